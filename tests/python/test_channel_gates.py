"""Squeeze-and-excitation nets: surgery keeps their gates global, so the
converted net takes any input size; OpenCV's dnn, reading the converted
files on its own, is the oracle."""

import numpy as np
import pytest

import surgery
from surgery.testing import randomize, with_input

from conftest import opencv_caffe_reader

SHAPE = (1, 3, 20, 20)  # 20 -> conv1 18 -> conv2 8 -> conv3 6 -> a 6x6 global pooling
LARGER = (1, 3, 30, 30)  # 1.5x: conv3 11 -> the 6x6 window gives 6x6 cells

# The two ways Caffe SE nets write a gate: InnerProducts giving a 2-D gate
# (SE modules added to other nets), and the SENet authors' 1x1 Convolutions
# reshaped to N x C; both end in a Scale on axis 0.
INNER_PRODUCT_GATE = """
layer { name: "se/down" type: "InnerProduct" bottom: "se/pool" top: "se/down"
        inner_product_param { num_output: 4 } }
layer { name: "se/relu" type: "ReLU" bottom: "se/down" top: "se/down" }
layer { name: "se/up" type: "InnerProduct" bottom: "se/down" top: "se/gate"
        inner_product_param { num_output: 16 } }
"""
CONVOLUTION_GATE = """
layer { name: "se/down" type: "Convolution" bottom: "se/pool" top: "se/down"
        convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "se/relu" type: "ReLU" bottom: "se/down" top: "se/down" }
layer { name: "se/up" type: "Convolution" bottom: "se/down" top: "se/up"
        convolution_param { num_output: 16 kernel_size: 1 } }
layer { name: "se/flat" type: "Reshape" bottom: "se/up" top: "se/gate"
        reshape_param { shape { dim: 0 dim: 0 } } }
"""

# SE-BN-Inception's structure in small (the SENet authors' deploy prototxt):
# BatchNorm, an Inception block with padding, its gate, and a classifier
# pooling of a fixed window (so the gates are the net's only global poolings).
SE_INCEPTION = """
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 bias_term: false pad: 1 kernel_size: 3 stride: 2 } }
layer { name: "conv1/bn" type: "BatchNorm" bottom: "conv1" top: "conv1"
        batch_norm_param { use_global_stats: true } }
layer { name: "conv1/bn/scale" type: "Scale" bottom: "conv1" top: "conv1"
        scale_param { bias_term: true } }
layer { name: "conv1/relu" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "3a/1x1" type: "Convolution" bottom: "conv1" top: "3a/1x1"
        convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "3a/3x3" type: "Convolution" bottom: "conv1" top: "3a/3x3"
        convolution_param { num_output: 4 pad: 1 kernel_size: 3 } }
layer { name: "3a/pool" type: "Pooling" bottom: "conv1" top: "3a/pool"
        pooling_param { pool: AVE kernel_size: 3 stride: 1 pad: 1 } }
layer { name: "3a/pool_proj" type: "Convolution" bottom: "3a/pool" top: "3a/pool_proj"
        convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "3a/concat" type: "Concat" bottom: "3a/1x1" bottom: "3a/3x3"
        bottom: "3a/pool_proj" top: "3a/concat" }
layer { name: "3a_global_pool" type: "Pooling" bottom: "3a/concat" top: "3a_global_pool"
        pooling_param { pool: AVE engine: CAFFE global_pooling: true } }
layer { name: "3a_1x1_down" type: "Convolution" bottom: "3a_global_pool" top: "3a_1x1_down"
        convolution_param { num_output: 3 kernel_size: 1 stride: 1 } }
layer { name: "3a_1x1_down/relu" type: "ReLU" bottom: "3a_1x1_down" top: "3a_1x1_down" }
layer { name: "3a_1x1_up" type: "Convolution" bottom: "3a_1x1_down" top: "3a_1x1_up"
        convolution_param { num_output: 12 kernel_size: 1 stride: 1 } }
layer { name: "3a_prob" type: "Sigmoid" bottom: "3a_1x1_up" top: "3a_1x1_up" }
layer { name: "3a_prob_reshape" type: "Reshape" bottom: "3a_1x1_up" top: "3a_prob_reshape"
        reshape_param { shape { dim: 0 dim: 0 } } }
layer { name: "3a_scale" type: "Scale" bottom: "3a/concat" bottom: "3a_prob_reshape"
        top: "3a/output" scale_param { axis: 0 bias_term: false } }
layer { name: "pool5" type: "Pooling" bottom: "3a/output" top: "pool5"
        pooling_param { pool: AVE kernel_size: 10 stride: 1 } }
layer { name: "classifier" type: "InnerProduct" bottom: "pool5" top: "classifier"
        inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "classifier" top: "prob" }
"""


def se_net(gate, classifier_bottom="conv3"):
    return """
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
        convolution_param { num_output: 16 kernel_size: 3 stride: 2 } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "se/pool" type: "Pooling" bottom: "conv2" top: "se/pool"
        pooling_param { pool: AVE global_pooling: true } }
""" + gate + """
layer { name: "se/sigmoid" type: "Sigmoid" bottom: "se/gate" top: "se/gate" }
layer { name: "se/scale" type: "Scale" bottom: "conv2" bottom: "se/gate" top: "se/scale"
        scale_param { axis: 0 } }
layer { name: "conv3" type: "Convolution" bottom: "se/scale" top: "conv3"
        convolution_param { num_output: 16 kernel_size: 3 } }
layer { name: "relu3" type: "ReLU" bottom: "conv3" top: "conv3" }
layer { name: "pool" type: "Pooling" bottom: "%s" top: "pool"
        pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
        inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
""" % classifier_bottom


def saved(tmp_path, text, name="se"):
    """A random-weight net of `text`, saved: (net, prototxt, caffemodel)."""
    (tmp_path / "def.prototxt").write_text(with_input(text, SHAPE))
    net = surgery.Net(tmp_path / "def.prototxt")
    randomize(net, seed=3)
    files = tmp_path / f"{name}.prototxt", tmp_path / f"{name}.caffemodel"
    net.save(*files)
    return net, files


def converted(tmp_path, text):
    """The original net, and its converted copy saved and read back."""
    net, files = saved(tmp_path, text)
    twin = surgery.Net(*files)
    result = surgery.fully_convolutionalize(twin)
    out = tmp_path / "conv.prototxt", tmp_path / "conv.caffemodel"
    twin.save(*out)
    return net, result, surgery.Net(*out), out


def opencv_forward(files, x):
    reader = opencv_caffe_reader()
    cv_net = reader(str(files[0]), str(files[1]))
    cv_net.setInput(x)
    return cv_net.forward()


@pytest.mark.parametrize("gate", [INNER_PRODUCT_GATE, CONVOLUTION_GATE], ids=["ip", "conv"])
def test_gate_stays_global_and_the_converted_net_takes_a_larger_input(tmp_path, gate):
    net, result, conv, files = converted(tmp_path, se_net(gate))
    assert [(layer.old_name, layer.kernel) for layer in result.layers] == [
        ("pool", (6, 6)), ("fc", (1, 1))]
    assert {"se/pool", "se/down", "se/up"} <= surgery._core.channel_gate_layers(conv)
    equals_original_and_opencv(net, conv, files, seed=0)


def test_se_bn_inception_structure_converts_and_runs_at_one_and_a_half_times(tmp_path):
    # 20 -> conv1 10 -> pool5 1; 30 -> conv1 15 -> pool5 6.
    net, result, conv, files = converted(tmp_path, SE_INCEPTION)
    assert [layer.old_name for layer in result.layers] == ["classifier"]
    equals_original_and_opencv(net, conv, files, seed=4)


def test_gated_cells_are_the_whole_image_net_on_crops_only_at_one_cell(tmp_path):
    """The gate pools the whole input, so a cell is the original net on its
    crop only when the crop is the whole input; the geometry says so."""
    net, result, conv, _ = converted(tmp_path, se_net(INNER_PRODUCT_GATE))
    geo = surgery.geometry(conv)
    assert geo.gate_poolings == ("se/pool",) and geo.window == SHAPE[2:]
    assert any("gates se/pool stay global" in warning for warning in result.warnings)
    big = np.random.default_rng(1).standard_normal(LARGER).astype(np.float32)
    cells = conv.forward(data=big)["prob"]
    crop = net.forward(data=np.ascontiguousarray(big[:, :, :20, :20]))["prob"]
    assert not np.allclose(cells[0, :, 0, 0], crop[0], atol=1e-6)


def test_dense_forward_maps_an_se_net(tmp_path):
    _, _, conv, _ = converted(tmp_path, se_net(CONVOLUTION_GATE))
    image = np.random.default_rng(2).uniform(0, 1, (30, 30, 3)).astype(np.float32)
    dense = surgery.dense_forward(conv, image)
    assert dense.scores.shape == (5, 6, 6)


def test_a_gate_past_a_spatial_layer_is_refused_by_name(tmp_path):
    spatial = CONVOLUTION_GATE.replace("num_output: 4 kernel_size: 1",
                                       "num_output: 4 kernel_size: 3 pad: 1")
    net, _ = saved(tmp_path, se_net(spatial))
    with pytest.raises(surgery.NetDefinitionError,
                       match="global pooling 'se/pool' feeds a channel gate past layer "
                             "'se/down' \\(Convolution\\)"):
        surgery.fully_convolutionalize(net)


def test_pooling_feeding_a_gate_and_the_classifier_is_refused_by_name(tmp_path):
    # The classifier reads the gate's pooling too: no rule says which it is.
    net, files = saved(tmp_path, se_net(INNER_PRODUCT_GATE, classifier_bottom="se/pool"))
    with pytest.raises(surgery.NetDefinitionError,
                       match="global pooling 'se/pool' feeds the channel gate of Scale layer "
                             "'se/scale' and also layer 'pool' \\(Pooling\\)"):
        surgery.fully_convolutionalize(net)
    assert [layer.type for layer in net.layers].count("InnerProduct") == 3  # untouched


def equals_original_and_opencv(net, conv, files, seed):
    """At the declared size the converted net is the original; at 1.5x its
    6x6 map is what OpenCV computes from the converted files."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(SHAPE).astype(np.float32)
    np.testing.assert_allclose(conv.forward(data=x)["prob"].reshape(1, 5),
                               net.forward(data=x)["prob"], rtol=1e-5, atol=1e-6)
    big = rng.standard_normal(LARGER).astype(np.float32)
    got = conv.forward(data=big)["prob"]
    assert got.shape == (1, 5, 6, 6)
    np.testing.assert_allclose(got, opencv_forward(files, big), rtol=1e-4, atol=1e-5)
