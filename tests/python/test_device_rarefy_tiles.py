"""Rarefied (finer-stride) and tiled dense forwards in GPU mode:
DilatedPooling's GPU path runs on a GPU, and tiles work in GPU mode. GPU
cases skip without a CUDA build and device; the tiled rarefied ones also
run in CPU mode, where the same oracle holds (and where CI checks it).

Oracles: the CPU forward of the same net (within 1e-4 on probabilities, as
test_device.py's dense map), and the whole-image forward in the same mode
for tiles (within 1e-5, test_tiles.py's tolerance).
"""

import contextlib

import numpy as np
import pytest

import surgery
from surgery.testing import randomize

from conftest import fixture
from test_device import GPU_MARKS, gpu_mode, needs_gpu
from test_tiles import PADDED_NET, TOLERANCE, digits_canvas

MODES = ["cpu", pytest.param("gpu", marks=GPU_MARKS)]


def in_mode(mode):
    """GPU mode for "gpu"; tests run in CPU mode otherwise."""
    return gpu_mode() if mode == "gpu" else contextlib.nullcontext()


def assert_tiles_equal_whole(tiled, whole):
    assert tiled.tiles is not None and len(tiled.tiles) > 1
    assert tiled.scores.shape == whole.scores.shape
    assert np.abs(np.asarray(tiled.scores) - whole.scores).max() <= TOLERANCE


# --------------------------------------------------------------------------
# Rarefied nets: GPU map against the CPU map


@needs_gpu
def test_rarefied_lenet_f2_on_gpu_matches_cpu(lenet, mnist):
    """Rarefied while its params live on the GPU (heads unchanged: the
    weights stay in place), then run there."""
    canvas = digits_canvas(mnist, (60, 72), 4).astype(np.float32)[None, None] / 255
    cpu = surgery.fully_convolutionalize(*lenet, factor=2).net
    want = cpu.forward(data=canvas)["prob"]
    with gpu_mode():
        net = surgery.Net(*lenet)
        net.forward(data=np.zeros((1, 1, 28, 28), np.float32))  # params go to the GPU
        surgery.fully_convolutionalize(net)
        names = ("conv1", "conv2", "ip1-conv", "ip2-conv")
        heads = {name: net.param_heads(name) for name in names}
        assert surgery.rarefy(net, 2).stride == (2, 2)
        assert {name: net.param_heads(name) for name in names} == heads
        got = net.forward(data=canvas)["prob"]
    assert got.shape == want.shape == (1, 10, (60 - 28) // 2 + 1, (72 - 28) // 2 + 1)
    np.testing.assert_allclose(got, want, atol=1e-4)


@needs_gpu
def test_rarefied_caffenet_f4_on_gpu_matches_cpu():
    """f = 4 reduces pool2 and pool5, so pool5 becomes DilatedPooling: its
    CUDA forward runs here, and its top stays on the device (Caffe's
    fallback to the CPU forward would leave it "synced")."""
    net = surgery.Net(fixture("bvlc_reference_caffenet", "deploy.prototxt"))
    randomize(net, seed=1)
    result = surgery.fully_convolutionalize(net, factor=4)
    assert surgery.geometry(net).stride == (8, 8)
    assert [layer.name for layer in result.rarefied
            if layer.new_type == "DilatedPooling"] == ["pool5"]
    x = np.random.default_rng(4).standard_normal((1, 3, 291, 291)).astype(np.float32) * 50
    want = net.forward(data=x)["prob"]
    want_pool5 = np.array(net.blobs["pool5"])
    with gpu_mode():
        got = net.forward(data=x)["prob"]
        head = net.head("pool5")
        got_pool5 = np.array(net.blobs["pool5"])
    assert head == "gpu"
    assert got.shape == want.shape == (1, 1000, 9, 9)
    np.testing.assert_allclose(got, want, atol=1e-4)
    # DilatedPooling's own output: its inputs differ from the CPU's only by
    # the rounding of the convolutions before it.
    np.testing.assert_allclose(got_pool5, want_pool5, rtol=1e-4,
                               atol=1e-5 * np.abs(want_pool5).max())


# --------------------------------------------------------------------------
# Tiles in GPU mode: the stitched map equals the whole-image forward


def padded_net(folder):
    """test_tiles.py's net (padding, ceil-rounded and padded pooling, a
    dilated and a strided convolution), random weights."""
    path = folder / "padded.prototxt"
    path.write_text(PADDED_NET)
    net = surgery.Net(path)
    randomize(net, seed=3)
    return net


@needs_gpu
@pytest.mark.parametrize("tile", [58, (53, 90)])
def test_tiles_on_gpu_equal_whole_forward(tmp_path, tile):
    net = padded_net(tmp_path)
    image = np.random.default_rng(0).random((211, 157, 3), dtype=np.float32)
    with gpu_mode():
        whole = surgery.dense_forward(net, image)
        tiled = surgery.dense_forward(net, image, tile=tile)
    assert_tiles_equal_whole(tiled, whole)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tile", [100, (53, 90)])
def test_rarefied_padded_net_tiles_equal_whole_forward(tmp_path, mode, tile):
    """Rarefied by 4 (stride 8 -> 2): p2 becomes a padded, ceil-rounded AVE
    DilatedPooling, whose zero padding at a tile's border the overlap must
    keep out of the cells kept, as for the stock layers."""
    net = padded_net(tmp_path)
    assert any(layer.new_type == "DilatedPooling" for layer in surgery.rarefy(net, 4).layers)
    image = np.random.default_rng(1).random((211, 157, 3), dtype=np.float32)
    with in_mode(mode):
        whole = surgery.dense_forward(net, image)
        tiled = surgery.dense_forward(net, image, tile=tile)
    assert whole.geometry.stride == (2, 2)
    assert_tiles_equal_whole(tiled, whole)


@pytest.mark.parametrize("mode", MODES)
def test_rarefied_lenet_tiles_equal_whole_forward(lenet, mnist, mode):
    """Trained LeNet at stride 2 (its 4 rarefied by 2, through dense_forward's
    stride=) on a canvas whose sides the tiles divide neither."""
    canvas = digits_canvas(mnist, (150, 230), 30)
    net = surgery.fully_convolutionalize(*lenet).net
    with in_mode(mode):
        whole = surgery.dense_forward(net, canvas, stride=2)
        tiled = surgery.dense_forward(net, canvas, stride=2, tile=(61, 97))
    assert whole.geometry.stride == (2, 2)
    assert_tiles_equal_whole(tiled, whole)
