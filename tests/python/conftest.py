"""Shared test inputs: the fixtures beside the checkout, MNIST, tiny nets."""

import os
from typing import Callable, NamedTuple

import pytest

from surgery.testing import fixtures

from digit_canvases import read_mnist

FIXTURES = fixtures()

# Input 1x1x4x4 -> 2x2 convolution (1 output) -> InnerProduct(2).
TINY_NET = """
name: "tiny"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 1 kernel_size: 2 weight_filler { type: "xavier" } } }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"
        inner_product_param { num_output: 2 weight_filler { type: "xavier" } } }
"""


def fixture(*parts):
    """Path of a shared fixture; skips the test when it is absent."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"fixture not found: {path}")
    return path


def pycaffe_net(prototxt, weights=None):
    """A net loaded as pycaffe code loads one: surgery.pycaffe.Net, TEST phase."""
    import surgery.pycaffe as caffe
    if weights is None:
        return caffe.Net(os.fspath(prototxt), caffe.TEST)
    return caffe.Net(os.fspath(prototxt), os.fspath(weights), caffe.TEST)


class Loader(NamedTuple):
    """One way users load nets from files: `net(prototxt, weights=None)`
    and `weights(net, caffemodel)`, which copies trained weights in."""
    net: Callable
    weights: Callable


def _surgery_loader():
    import surgery
    return Loader(surgery.Net, lambda net, model: net.load_weights(model))


LOADERS = {"surgery.Net": _surgery_loader,
           "surgery.pycaffe.Net": lambda: Loader(
               pycaffe_net, lambda net, model: net.copy_from(os.fspath(model)))}


@pytest.fixture(params=sorted(LOADERS))
def loader(request):
    """Each way to load a net from files: a hostile file meets the same
    checks through the pycaffe face as through surgery.Net."""
    return LOADERS[request.param]()


def opencv_caffe_reader():
    """cv2.dnn.readNetFromCaffe, the independent oracle; skips where OpenCV 5
    (the GPU machine's) dropped the Caffe importer."""
    import cv2
    if not hasattr(cv2.dnn, "readNetFromCaffe"):
        pytest.skip(f"OpenCV {cv2.__version__} has no Caffe importer (4.x has)")
    return cv2.dnn.readNetFromCaffe


@pytest.fixture(scope="session")
def mnist():
    """The MNIST test set: (images N x 28 x 28 uint8, labels N)."""
    return read_mnist(fixture("mnist_t10k"))


@pytest.fixture(scope="session")
def lenet():
    """Paths of the trained LeNet: (prototxt, caffemodel)."""
    folder = fixture("lenet_mnist_trained")
    return folder / "lenet.prototxt", folder / "lenet_iter_10000.caffemodel"


@pytest.fixture(scope="module")
def caffenet_fc():
    """CaffeNet's definition with random weights, converted; one per module,
    since tests reshape it."""
    import surgery
    from surgery.testing import randomize
    net = surgery.Net(fixture("bvlc_reference_caffenet", "deploy.prototxt"))
    randomize(net, seed=5)
    surgery.fully_convolutionalize(net)
    return net


def converted_random(folder, *deploy):
    """A fixture deploy net with random weights, converted and saved in
    `folder`: (prototxt, caffemodel)."""
    import surgery
    from surgery.testing import random_model
    proto, model = random_model(fixture(*deploy), folder, seed=1)
    out = folder / "full_conv.prototxt", folder / "full_conv.caffemodel"
    surgery.fully_convolutionalize(proto, model, *out)
    return out


@pytest.fixture(scope="session")
def caffenet_fc_files(tmp_path_factory):
    """caffenet_fc's files (random weights, seed 1), written once for the
    modules that load fresh copies of it (rarefaction is in place)."""
    return converted_random(tmp_path_factory.mktemp("caffenet_fc"), "bvlc_reference_caffenet",
                            "deploy.prototxt")


@pytest.fixture
def tiny_prototxt(tmp_path):
    path = tmp_path / "tiny.prototxt"
    path.write_text(TINY_NET)
    return path


@pytest.fixture(scope="session")
def digits_map():
    """The demo's trained digits classifier, converted, on its canvas of pasted
    digits: (DenseMap, the pasted digits' truth). Made once for the suite."""
    import surgery
    from surgery import demo, digits
    prototxt, weights = digits.trained_model(log=lambda *a: None)
    result = surgery.fully_convolutionalize(prototxt, weights)
    _, (images, labels) = digits.split(*digits.digit_images())
    canvas, truth = demo.canvas_with_digits(images, labels)
    return surgery.dense_forward(result.net, canvas, labels=digits.LABELS), truth
