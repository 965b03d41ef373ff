"""fully_convolutionalize on real architectures (random weights) and the
real trained LeNet, checked against the original net, OpenCV's independent
Caffe reader and the seed's own numpy recipe."""

import re

import numpy as np
import pytest

import surgery
from conftest import fixture, opencv_caffe_reader
from surgery.testing import random_model

# Needs only the installed package and the fixtures: runs against the wheel too.
pytestmark = pytest.mark.wheel


def opencv_forward(prototxt, caffemodel, x, blob=None):
    net = opencv_caffe_reader()(str(prototxt), str(caffemodel))
    net.setInput(x)
    return net.forward(blob) if blob else net.forward()


def kernels(prototxt_text):
    """(name, type, kernel) of each layer, from prototxt text."""
    out = []
    for block in re.findall(r"layer \{(.*?)\n\}", prototxt_text, re.S):
        name = re.search(r'name: "([^"]+)"', block).group(1)
        kind = re.search(r'type: "([^"]+)"', block).group(1)
        kernel = re.search(r"kernel_size: (\d+)", block)
        out.append((name, kind, kernel and int(kernel.group(1))))
    return out


@pytest.fixture(scope="module")
def caffenet(tmp_path_factory):
    """CaffeNet with random weights (a 233 MB caffemodel), original and converted."""
    folder = tmp_path_factory.mktemp("caffenet")
    proto, model = random_model(fixture("bvlc_reference_caffenet", "deploy.prototxt"), folder)
    result = surgery.fully_convolutionalize(proto, model, folder / "full_conv.prototxt",
                                            folder / "full_conv.caffemodel")
    return proto, model, folder / "full_conv.prototxt", folder / "full_conv.caffemodel", result


@pytest.mark.slow
def test_caffenet_matches_the_seeds_hand_made_prototxt(caffenet):
    seed = fixture("bvlc_caffenet_full_conv", "bvlc_caffenet_full_conv.prototxt").read_text()
    ours = caffenet[2].read_text()
    assert kernels(ours) == kernels(seed)
    report = caffenet[4]
    assert [(layer.old_name, layer.new_name, layer.kernel) for layer in report.layers] == [
        ("fc6", "fc6-conv", (6, 6)), ("fc7", "fc7-conv", (1, 1)), ("fc8", "fc8-conv", (1, 1))]
    assert report.layers[0].old_shape == (4096, 9216)
    assert report.layers[0].new_shape == (4096, 256, 6, 6)
    assert not any(layer.copied for layer in report.layers)
    g = report.geometry
    assert (g.window, g.stride) == ((227, 227), (32, 32))
    assert g.padded_layers == ("conv2", "conv3", "conv4", "conv5")
    assert any("pad" in w for w in report.warnings)


def test_caffenet_at_227_equals_the_original(caffenet):
    proto, model, conv_proto, conv_model, _ = caffenet
    x = np.random.default_rng(1).uniform(-50, 50, (1, 3, 227, 227)).astype(np.float32)
    original = surgery.Net(proto, model).forward(data=x)["prob"]
    converted = surgery.Net(conv_proto, conv_model).forward(data=x)["prob"]
    assert converted.shape == (1, 1000, 1, 1)
    np.testing.assert_allclose(converted[:, :, 0, 0], original, atol=1e-6)


@pytest.mark.slow
def test_caffenet_451_map_agrees_with_opencv_and_the_seed_recipe(caffenet):
    proto, model, conv_proto, conv_model, _ = caffenet
    x = np.random.default_rng(2).uniform(-50, 50, (1, 3, 451, 451)).astype(np.float32)
    ours = surgery.Net(conv_proto, conv_model).forward(data=x)["prob"]
    assert ours.shape == (1, 1000, 8, 8)
    np.testing.assert_allclose(opencv_forward(conv_proto, conv_model, x), ours, atol=1e-4)
    # The seed: its own full-conv prototxt, weights moved with numpy .flat.
    seed = surgery.Net(fixture("bvlc_caffenet_full_conv", "bvlc_caffenet_full_conv.prototxt"))
    original = surgery.Net(proto, model)
    for name, blobs in original.params.items():
        target = seed.params[name + "-conv" if name.startswith("fc") else name]
        for src, dst in zip(blobs, target):
            dst.flat = src.flat
    np.testing.assert_allclose(seed.forward(data=x)["prob"], ours, atol=1e-6)


def test_original_caffemodel_loads_into_the_converted_prototxt(caffenet):
    proto, model, conv_proto, conv_model, _ = caffenet
    direct = surgery.Net(conv_proto, model)  # fc6 weights into fc6-conv
    saved = surgery.Net(conv_proto, conv_model)
    for name in ("fc6-conv", "fc8-conv"):
        np.testing.assert_array_equal(direct.params[name][0], saved.params[name][0])


def test_live_surgery_keeps_the_weights_memory(caffenet):
    proto, model, *_ = caffenet
    net = surgery.Net(proto, model)
    before = net.params["fc6"][0]
    result = surgery.fully_convolutionalize(net)
    after = net.params["fc6-conv"][0]
    assert after.shape == (4096, 256, 6, 6)
    assert np.shares_memory(before, after)
    assert "fc6-conv" in net.blobs and "fc6" not in net.blobs
    assert len(result.layers) == 3


# --- The real trained LeNet: exact crop equivalence (no padding) ----------------

@pytest.fixture(scope="module")
def lenet_pair(lenet):
    original = surgery.Net(*lenet)
    converted = surgery.Net(*lenet)
    result = surgery.fully_convolutionalize(converted)
    return original, converted, result


def test_lenet_dense_cells_equal_the_crops(lenet_pair, mnist):
    original, converted, result = lenet_pair
    images, _ = mnist
    assert result.geometry.window == (28, 28) and result.geometry.stride == (4, 4)
    assert result.geometry.receptive_field == (28, 28) and not result.geometry.padded_layers
    canvas = np.zeros((1, 1, 40, 36), np.float32)
    canvas[0, 0, 0:28, 0:28] = images[0] / 256.0
    canvas[0, 0, 12:40, 8:36] = np.maximum(canvas[0, 0, 12:40, 8:36], images[1] / 256.0)
    dense = converted.forward(data=canvas)["prob"]
    assert dense.shape == (1, 10, 4, 3)
    crops = np.stack([canvas[0, :, 4 * i:4 * i + 28, 4 * j:4 * j + 28]
                      for i in range(4) for j in range(3)])
    expected = original.forward(data=crops)["prob"].reshape(4, 3, 10).transpose(2, 0, 1)
    np.testing.assert_allclose(dense[0], expected, atol=1e-6)


def test_lenet_finds_pasted_digits_where_they_are(lenet_pair, mnist):
    _, converted, _ = lenet_pair
    images, labels = mnist
    canvas = np.zeros((1, 1, 84, 84), np.float32)
    places = {(0, 0): 3, (14, 14): 0, (0, 14): 1}  # cell -> which test image
    for (i, j), k in places.items():
        canvas[0, 0, 4 * i:4 * i + 28, 4 * j:4 * j + 28] = images[k] / 256.0
    prob = converted.forward(data=canvas)["prob"][0]
    for (i, j), k in places.items():
        assert prob[:, i, j].argmax() == labels[k]
        assert prob[:, i, j].max() > 0.9


# --- Other architectures, random weights ------------------------------------

@pytest.mark.parametrize("folder,name,blob,big,cells", [
    pytest.param("bvlc_alexnet", "deploy.prototxt", "prob", 291, (3, 3), marks=pytest.mark.slow),
    ("squeezenet", "SqueezeNet_v1.1_deploy.prototxt", "prob", 259, (3, 3)),
    pytest.param("resnet50_deploy", "ResNet-50-deploy.prototxt", "prob", 256, (2, 2),
                 marks=pytest.mark.slow),
    pytest.param("vgg16_deploy", "vgg16_deploy.v1-gist-derived.prototxt", "prob", 256, (2, 2),
                 marks=pytest.mark.slow),
])
def test_architecture_converts_and_agrees_with_opencv(tmp_path, folder, name, blob, big, cells):
    proto, model = random_model(fixture(folder, name), tmp_path)
    original = surgery.Net(proto, model)
    size = original.blobs[original.inputs[0]].shape[2]
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    expected = original.forward(data=x)[blob]
    del original
    out_proto, out_model = tmp_path / "fc.prototxt", tmp_path / "fc.caffemodel"
    result = surgery.fully_convolutionalize(proto, model, out_proto, out_model)
    assert result.layers
    net = surgery.Net(out_proto, out_model)
    same = net.forward(data=x)[blob]
    np.testing.assert_allclose(same.reshape(expected.shape), expected, rtol=1e-4, atol=1e-6)
    x_big = rng.uniform(-1, 1, (1, 3, big, big)).astype(np.float32)
    dense = net.forward(data=x_big)[blob]
    assert dense.shape[2:] == cells
    np.testing.assert_allclose(opencv_forward(out_proto, out_model, x_big), dense,
                               rtol=1e-3, atol=1e-5)


def test_the_padding_warning_of_a_deep_net_is_one_short_line():
    """ResNet-50 pads in 17 layers: the warning counts them and names four,
    not a line of 17 names; the geometry keeps the full list."""
    result = surgery.fully_convolutionalize(fixture("resnet50_deploy", "ResNet-50-deploy.prototxt"))
    assert len(result.geometry.padded_layers) == 17
    [warning] = [w for w in result.warnings if "pad their input" in w]
    first = ", ".join(result.geometry.padded_layers[:4])
    assert warning.startswith(f"17 layers ({first} and 13 more: Geometry.padded_layers")
    assert len(warning) < 300
