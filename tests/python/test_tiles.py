"""Exact tiled dense forward: the stitched map of tiles equals the
whole-image forward on every cell (the oracle is the whole forward itself,
run on the same array)."""

import numpy as np
import pytest

import surgery
from surgery.testing import randomize, with_input
from surgery.tiles import plan_tiles

from conftest import fixture

TOLERANCE = 1e-5

# Padding everywhere, pooling that rounds up (and a padded pool), a dilated
# convolution and a strided one: every way a tile border can differ from
# the image's.
PADDED_NET = with_input("""
layer { name: "c1" type: "Convolution" bottom: "data" top: "c1"
        convolution_param { num_output: 6 kernel_size: 5 stride: 2 pad: 2 } }
layer { name: "r1" type: "ReLU" bottom: "c1" top: "c1" }
layer { name: "p1" type: "Pooling" bottom: "c1" top: "p1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "c2" type: "Convolution" bottom: "p1" top: "c2"
        convolution_param { num_output: 8 kernel_size: 3 pad: 2 dilation: 2 } }
layer { name: "p2" type: "Pooling" bottom: "c2" top: "p2"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "c3" type: "Convolution" bottom: "p2" top: "c3"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
""", [1, 3, 64, 64])


@pytest.fixture(scope="module")
def padded_net(tmp_path_factory):
    path = tmp_path_factory.mktemp("padded") / "padded.prototxt"
    path.write_text(PADDED_NET)
    net = surgery.Net(path)
    randomize(net, seed=3)
    return net


@pytest.fixture(scope="module")
def caffenet():
    """Full-conv CaffeNet (padded conv2..conv5) with random weights."""
    net = surgery.Net(fixture("bvlc_caffenet_full_conv", "bvlc_caffenet_full_conv.prototxt"))
    randomize(net, seed=1)
    return net


@pytest.fixture(scope="module")
def lenet_conv(lenet):
    return surgery.fully_convolutionalize(*lenet).net


def digits_canvas(mnist, shape, count, seed=0):
    """MNIST test digits pasted at random places on a black canvas."""
    images, _ = mnist
    rng = np.random.default_rng(seed)
    canvas = np.zeros(shape, np.uint8)
    for k in rng.choice(len(images), count, replace=False):
        y, x = rng.integers(0, shape[0] - 28), rng.integers(0, shape[1] - 28)
        canvas[y:y + 28, x:x + 28] = np.maximum(canvas[y:y + 28, x:x + 28], images[k])
    return canvas


def assert_same_map(tiled, whole):
    assert tiled.tiles is not None and len(tiled.tiles) > 1
    assert tiled.scores.shape == whole.scores.shape
    assert np.abs(np.asarray(tiled.scores) - whole.scores).max() <= TOLERANCE


@pytest.mark.parametrize("tile", [51, 58, 63, (53, 90), 100])
def test_padded_net_tiles_equal_whole_forward(padded_net, tile):
    image = np.random.default_rng(0).random((211, 157, 3), dtype=np.float32)
    whole = surgery.dense_forward(padded_net, image)
    tiled = surgery.dense_forward(padded_net, image, tile=tile)
    assert_same_map(tiled, whole)


def test_tiles_without_overlap_differ_at_the_seams(padded_net):
    """The oracle can fail: tiles that abut, run alone and stitched, do not
    give the whole forward near their borders (their zero padding)."""
    image = np.random.default_rng(0).random((128, 128, 3), dtype=np.float32)
    whole = surgery.dense_forward(padded_net, image).scores
    geo = surgery.geometry(padded_net)
    half = 64  # a multiple of the stride, so each half's grid is the image's
    cells = half // geo.stride[0]
    top = surgery.dense_forward(padded_net, image[:half]).scores
    bottom = surgery.dense_forward(padded_net, image[half:]).scores
    naive = np.concatenate([top[:, :cells], bottom], axis=1)[:, :whole.shape[1]]
    seam = np.abs(naive - whole).max(axis=(0, 2))
    assert seam[cells - 1] > 1e-3 and seam[cells] > 1e-3
    assert seam[:cells - 3].max() <= TOLERANCE  # far from the seam, all agree


def test_every_cell_is_kept_by_exactly_one_tile(padded_net):
    geo = surgery.geometry(padded_net)
    whole = surgery.dense_forward(padded_net, np.zeros((300, 211, 3), np.float32)).shape

    def cells_of(h, w):
        padded_net.reshape(data=(1, 3, h, w))
        return padded_net.blobs["c3"].shape[2:]

    for tile in (51, 58, (77, 53), 299):
        plan = plan_tiles(geo, (300, 211), tile, cells_of)
        assert plan.map_shape == whole
        count = np.zeros(whole, int)
        for t in plan:
            count[t.cells] += 1
            assert t.y.origin % geo.stride[0] == 0 and t.x.origin % geo.stride[1] == 0
            assert t.y.length < plan.tile[0] + geo.stride[0]
        assert (count == 1).all()


def test_too_small_a_tile_is_refused(padded_net):
    with pytest.raises(surgery.ShapeError, match="at least"):
        surgery.dense_forward(padded_net, np.zeros((200, 200, 3), np.float32), tile=20)


@pytest.mark.slow
def test_caffenet_1000x700_in_tiles_of_451(caffenet):
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (700, 1000, 3), dtype=np.uint8)
    kwargs = dict(preprocess=surgery.Preprocess(mean=[104, 117, 123], channel_swap=(2, 1, 0),
                                                raw_scale=255))
    whole = surgery.dense_forward(caffenet, image, **kwargs)
    tiled = surgery.dense_forward(caffenet, image, tile=451, **kwargs)  # divides neither side
    assert_same_map(tiled, whole)


@pytest.mark.slow
def test_lenet_on_a_large_digits_canvas(lenet_conv, mnist):
    canvas = digits_canvas(mnist, (600, 900), 300)
    whole = surgery.dense_forward(lenet_conv, canvas)
    for tile in (128, (97, 203)):
        assert_same_map(surgery.dense_forward(lenet_conv, canvas, tile=tile), whole)


# In a child process, so that no other net's memory counts against the limit.
OVER_THE_LIMIT = """
import gc, json, sys
import numpy as np
import surgery
from surgery.testing import randomize
image = np.random.default_rng(2).random((1000, 900, 3), dtype=np.float32)
net = surgery.Net(sys.argv[1])
randomize(net, seed=3)
net.save(sys.argv[2], sys.argv[3])
whole = surgery.dense_forward(net, image).scores
del net
gc.collect()
net = surgery.Net(sys.argv[2], sys.argv[3])
low, high = 1 << 20, 1 << 34   # the least limit the whole forward fits in, by bisection
while high - low > 1 << 16:
    surgery.set_memory_limit((low + high) // 2)
    try:
        net.reshape(data=(1, 3, 1000, 900))
        high = (low + high) // 2
    except surgery.MemoryLimitError:
        low = (low + high) // 2
surgery.set_memory_limit(high // 3)
tiled = surgery.dense_forward(net, image)
print(json.dumps({"tiles": len(tiled.tiles), "tile": tiled.tiles.tile,
                  "diff": float(np.abs(tiled.scores - whole).max())}))
"""


def test_image_over_the_memory_limit_is_tiled_and_exact(tmp_path):
    import json
    import subprocess
    import sys
    path = tmp_path / "padded.prototxt"
    path.write_text(PADDED_NET)
    run = subprocess.run([sys.executable, "-c", OVER_THE_LIMIT, str(path),
                          str(tmp_path / "m.prototxt"), str(tmp_path / "m.caffemodel")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.splitlines()[-1])
    assert report["tiles"] > 1 and report["diff"] <= TOLERANCE


def test_a_mean_image_is_refused_for_tiles(padded_net):
    mean = np.random.default_rng(0).random((3, 8, 8))
    with pytest.raises(surgery.ShapeError, match="per-channel"):
        surgery.dense_forward(padded_net, np.zeros((100, 100, 3), np.float32),
                              preprocess=surgery.Preprocess(mean=mean), tile=50)


def test_blobs_of_a_tiled_forward_are_refused(padded_net):
    image = np.zeros((100, 100, 3), np.float32)
    with pytest.raises(surgery.SurgeryError, match="one per tile"):
        surgery.dense_forward(padded_net, image, tile=60, blobs=("c1",))
    dense = surgery.dense_forward(padded_net, image, tile=60)
    with pytest.raises(surgery.SurgeryError, match="tiles"):
        dense.features("c1")
