"""Preprocessing of the common Caffe model zoo families, as their authors
published it: ``Preprocess.preset(name)`` takes one by name (the CLI's
``--preset``). Each gives the settings for images read as load_image reads
them (RGB, 0..1): the channel order, the scale to the net's range, the mean
subtracted, and the classifier's input size (used only when asked to
resize: a dense map wants the image at its own size)."""

from __future__ import annotations

from typing import Any, Dict

# RGB images into nets trained on BGR images (Caffe read them with OpenCV).
BGR = (2, 1, 0)


def caffenet() -> Dict[str, Any]:
    """BVLC reference CaffeNet and AlexNet (BVLC/caffe, models/bvlc_reference_caffenet
    and models/bvlc_alexnet): BGR 0..255 less the ILSVRC-2012 mean image
    (python/caffe/imagenet/ilsvrc_2012_mean.npy; these are its per-channel
    averages, as pycaffe's classify.py example uses it), 227x227 crops."""
    return dict(mean=(104.00698793, 116.66876762, 122.67891434), channel_swap=BGR,
                raw_scale=255.0, size=(227, 227))


def vgg() -> Dict[str, Any]:
    """VGG-16 and VGG-19 (Simonyan and Zisserman's Caffe models, the model
    zoo's gist): BGR 0..255 less the mean pixel (103.939, 116.779, 123.68),
    224x224."""
    return dict(mean=(103.939, 116.779, 123.68), channel_swap=BGR, raw_scale=255.0,
                size=(224, 224))


def resnet() -> Dict[str, Any]:
    """ResNet-50/101/152 (KaimingHe/deep-residual-networks): BGR 0..255 less
    the ImageNet mean, 224x224. Its authors ship a mean image,
    ResNet_mean.binaryproto (pass it as the mean for their exact numbers);
    these per-channel values are the ones Caffe deployments of ResNet use
    in its place (as VGG's)."""
    return dict(mean=(103.939, 116.779, 123.68), channel_swap=BGR, raw_scale=255.0,
                size=(224, 224))


def googlenet() -> Dict[str, Any]:
    """BVLC GoogLeNet (BVLC/caffe, models/bvlc_googlenet/train_val.prototxt:
    mean_value 104, 117, 123 and crop_size 224): BGR 0..255."""
    return dict(mean=(104.0, 117.0, 123.0), channel_swap=BGR, raw_scale=255.0, size=(224, 224))


def inception() -> Dict[str, Any]:
    """Inception-v3, v4 and Inception-ResNet-v2 as ported to Caffe from
    TensorFlow's slim models (e.g. soeaver/caffe-model): BGR 0..255 less 128,
    times 1/128 (inputs in -1..1), 299x299."""
    return dict(mean=(128.0, 128.0, 128.0), channel_swap=BGR, raw_scale=255.0,
                input_scale=0.0078125, size=(299, 299))


PRESETS = {preset.__name__: preset for preset in (caffenet, vgg, resnet, googlenet, inception)}
