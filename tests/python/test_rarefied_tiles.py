"""Tiles and rarefaction together (tiling works with rarefied nets):
a tiled dense forward of a rarefied net equals the whole-image forward of
the same rarefied net on every cell, with tiles that divide neither side.

Tile origins must lie on the finer net's grid (its stride), and the overlap
must cover its receptive field, which rarefaction keeps while the stride
shrinks: the plan reads both from the rarefied net's geometry."""

import numpy as np
import pytest

import surgery

from test_tiles import TOLERANCE, digits_canvas


def assert_tiled_equals_whole(net, image, tile, **kwargs):
    tiled = surgery.dense_forward(net, image, tile=tile, **kwargs)
    whole = surgery.dense_forward(net, image, tile=None, **kwargs)
    geo = surgery.geometry(net)
    assert len(tiled.tiles) > 1
    for t in tiled.tiles:
        assert t.y.origin % geo.stride[0] == 0 and t.x.origin % geo.stride[1] == 0
    assert tiled.scores.shape == whole.scores.shape
    assert np.abs(np.asarray(tiled.scores) - whole.scores).max() <= TOLERANCE
    return tiled


@pytest.mark.parametrize("factor", [2, 4])
def test_rarefied_lenet_tiles_equal_whole_forward(lenet, mnist, factor):
    net = surgery.fully_convolutionalize(*lenet, factor=factor).net
    assert surgery.geometry(net).stride == (4 // factor,) * 2
    canvas = digits_canvas(mnist, (200, 300), 60, seed=factor)
    assert_tiled_equals_whole(net, canvas, (61, 97))


def test_rarefied_caffenet_tiles_equal_whole_forward(caffenet_fc):
    rng = np.random.default_rng(8)
    image = rng.integers(0, 256, (483, 547, 3), dtype=np.uint8)
    # input_scale: at 1, random weights give scores up to 260, where a few
    # ulps of float rounding (different GEMM shapes in a tile and the whole)
    # reach 4e-5 in probability. At 0.02 rounding stays below 3e-6, while a
    # cell that saw a tile's zero padding is off by 6e-3 or more (measured).
    kwargs = dict(preprocess=surgery.Preprocess(mean=[104, 117, 123], channel_swap=(2, 1, 0),
                                                raw_scale=255, input_scale=0.02))
    # stride= rarefies the converted net in place (f = 2: pool5 loses its
    # stride, fc6-conv is dilated) before the tiles are planned. Tiles of
    # 451 keep 7 of their 15 x 15 cells a side away from the image's border.
    tiled = assert_tiled_equals_whole(caffenet_fc, image, 451, stride=16, **kwargs)
    assert surgery.geometry(caffenet_fc).stride == (16, 16)
    assert tiled.shape == ((483 - 227) // 16 + 1, (547 - 227) // 16 + 1)
