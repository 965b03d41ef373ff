"""Rarefaction of nets with padding against the two shift-and-stitch
definitions (shift_and_stitch.py), on the scores before the Softmax, to
1e-5 of their scale on every cell:

- CaffeNet (random weights, padded conv2..conv5) at the issue's 451 with
  f = 2 and 4 against the layer-level definition on every cell, and the
  input-level one on the cells whose receptive field stays inside the image;
  at 291 (three coarse cells a side) against the layer-level one, quickly;
- SqueezeNet (its global pool10 made a fixed window by the conversion, then
  dilated) and VGG-16 with f = 2 against the layer-level one.
"""

import numpy as np
import pytest

import surgery
from surgery.testing import randomize

from conftest import converted_random, fixture
from shift_and_stitch import Segments, input_level, inside_cells, layer_level

SQUEEZENET = ("squeezenet", "SqueezeNet_v1.1_deploy.prototxt")


@pytest.fixture(scope="module")
def squeezenet(tmp_path_factory):
    return converted_random(tmp_path_factory.mktemp("squeezenet"), *SQUEEZENET)


def random_input(size, seed):
    return np.random.default_rng(seed).standard_normal((1, 3, size, size)).astype(np.float32) * 50


def scores_blob(net):
    """The scores: the Softmax's input."""
    return net.layers[-1].bottoms[0]


def assert_close(got, want):
    """got equals want (cells NaN in neither) to 1e-5 of the scores' scale."""
    assert not np.isnan(want).any(), "every rarefied cell has its shift-and-stitch twin"
    # rtol=0: a relative term would let each cell add 1e-5 of itself (up to
    # 2e-5 of the scale); 8.2e-7 of the scale measured at 451.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


def assert_every_cell(got, want):
    """Every cell of the rarefied scores `got` against the oracle's map,
    which may hold more cells at its end (a phase's partial windows)."""
    rows, cols = got.shape[2:]
    assert want.shape[2] >= rows and want.shape[3] >= cols
    assert_close(got, want[:, :, :rows, :cols])


def reduced_layers(result):
    return [layer for layer in result.layers if layer.reduced]


# --------------------------------------------------------------------------
# Three coarse cells a side

# fixture, factor, input size, the layers whose stride is reduced. Sizes
# where no window of a reduced pooling hangs over its input's end (there
# Caffe's ceil rounding gives the original one more, partial, coarse cell).
LAYER_LEVEL = [
    pytest.param("caffenet_fc_files", 2, 291, ["pool5"], marks=pytest.mark.slow),
    pytest.param("caffenet_fc_files", 4, 291, ["pool2", "pool5"], marks=pytest.mark.slow),
    ("squeezenet", 2, 267, ["pool5"]),  # pool10 (made fixed) becomes DilatedPooling
]


@pytest.mark.parametrize("model,factor,size,reduced_names", LAYER_LEVEL)
def test_equals_the_layer_level_shift_and_stitch(request, tmp_path, model, factor, size,
                                                 reduced_names):
    prototxt, weights = request.getfixturevalue(model)
    x = random_input(size, seed=factor)
    original = surgery.Net(prototxt, weights)
    stride = surgery.geometry(original).stride[0]
    net = surgery.Net(prototxt, weights)
    if model == "squeezenet":
        # At the declared 227, Caffe's ceil rounding gave pool5 a partial
        # window: once rarefied, pool10's window does not fit. Refused, and
        # the net is left as it was.
        with pytest.raises(surgery.ShapeError, match="'pool10'.*larger input"):
            surgery.rarefy(net, factor)
        assert net.layers == original.layers
        assert surgery.geometry(net).stride == (stride, stride)
    original.reshape(data=x.shape)
    coarse = original.blobs[scores_blob(original)].shape[2]
    net.reshape(data=x.shape)
    result = surgery.rarefy(net, factor)
    assert result.stride == (stride // factor, stride // factor)
    assert [layer.name for layer in reduced_layers(result)] == reduced_names
    pooled_later = any(layer.new_type == "DilatedPooling" for layer in result.layers)
    assert pooled_later == (model == "squeezenet" or factor == 4)
    if model == "squeezenet":
        # The "global pool made fixed": the deploy's global pool10
        # was given a fixed window by the conversion, which rarefy dilates.
        assert "global_pooling: true" in fixture(*SQUEEZENET).read_text()
        assert "global_pooling" not in prototxt.read_text()
        pool10 = next(layer for layer in result.layers if layer.name == "pool10")
        assert (pool10.old_type, pool10.new_type, pool10.dilation) == \
            ("Pooling", "DilatedPooling", (2, 2))
    segments = Segments(original, prototxt.read_text(), reduced_names, tmp_path)
    want = layer_level(segments, reduced_layers(result), prototxt.read_text(), x)
    net.forward(data=x)
    got = np.array(net.blobs[segments.outputs[-1]])
    assert got.shape[2] == got.shape[3] == factor * (coarse - 1) + 1
    assert_every_cell(got, want)


# --------------------------------------------------------------------------
# CaffeNet at the 451 (8 x 8 coarse cells): 5 s per test for f = 2,
# 10 to 15 s for f = 4 on 2 cores

SIZE = 451


@pytest.fixture(scope="module", params=[2, pytest.param(4, marks=pytest.mark.slow)],
                ids=["f2", "f4"])
def rarefied_451(request, caffenet_fc_files):
    """CaffeNet rarefied by f, run once on a random 451 x 451 input:
    (factor, input, rarefy report, the rarefied net's scores)."""
    factor = request.param
    x = random_input(SIZE, seed=10 + factor)
    net = surgery.Net(*caffenet_fc_files)
    net.reshape(data=x.shape)
    result = surgery.rarefy(net, factor)
    net.forward(data=x)
    return factor, x, result, np.array(net.blobs[scores_blob(net)])


def test_caffenet_451_equals_the_layer_level_shift_and_stitch(rarefied_451, caffenet_fc_files,
                                                              tmp_path):
    factor, x, result, got = rarefied_451
    assert got.shape[2:] == (factor * 7 + 1,) * 2
    original = surgery.Net(*caffenet_fc_files)
    original.reshape(data=x.shape)
    text = caffenet_fc_files[0].read_text()
    segments = Segments(original, text, [layer.name for layer in reduced_layers(result)],
                        tmp_path)
    assert_every_cell(got, layer_level(segments, reduced_layers(result), text, x))


def test_caffenet_451_equals_the_input_level_shift_and_stitch_inside(rarefied_451,
                                                                     caffenet_fc_files):
    factor, x, result, got = rarefied_451
    original = surgery.Net(*caffenet_fc_files)
    geo = surgery.geometry(original)
    # Rarefaction keeps each cell's receptive field; only the stride changes.
    fine = surgery.geometry(result.net)
    assert fine.stride == (geo.stride[0] // factor,) * 2
    assert (fine.receptive_field, fine.receptive_offset) == \
        (geo.receptive_field, geo.receptive_offset)
    want = input_level(original, x, factor, scores_blob(original))
    rows, cols = got.shape[2:]
    assert want.shape[2] >= rows and want.shape[3] >= cols
    want = want[:, :, :rows, :cols]
    inside = (inside_cells(geo, factor, rows, SIZE, 0)[:, None]
              & inside_cells(geo, factor, cols, SIZE, 1)[None, :])
    assert inside.sum() >= (rows // 3) ** 2, "a test of some cells, not of none"
    assert_close(got[:, :, inside], want[:, :, inside])
    # Where the receptive field reaches the border, the shifted input moved
    # the zero padding: there the two definitions differ (so the mask is
    # needed, and the comparison above can fail).
    outside = np.abs(got - want)[:, :, ~inside]
    assert np.nanmax(outside) > 1e-3 * np.abs(want[:, :, inside]).max()


# --------------------------------------------------------------------------
# VGG-16: 17 s and 1.2 GB of weights (two copies) on 2 cores, as slow as
# test_surgery's VGG-16 case


@pytest.mark.slow
def test_vgg16_f2_equals_the_layer_level_shift_and_stitch(tmp_path):
    deploy = fixture("vgg16_deploy", "vgg16_deploy.v1-gist-derived.prototxt").read_text()
    # Batch 1 instead of the declared 16: Caffe keeps a blob's largest
    # allocation, and 16 images would hold about 1 GB of activations idle.
    assert "input_dim: 16\n" in deploy
    path = tmp_path / "vgg16_deploy.prototxt"
    path.write_text(deploy.replace("input_dim: 16\n", "input_dim: 1\n", 1))
    net = surgery.Net(path)
    randomize(net, seed=1)
    surgery.fully_convolutionalize(net)
    converted = tmp_path / "vgg16_full_conv.prototxt"
    net.save(converted)
    geo = surgery.geometry(net)
    stride = geo.stride[0]
    # Three coarse cells a side: the classifier's window and two strides (the
    # smallest input, one cell by Caffe's ceil rounding, is less than 224).
    size = geo.window[0] + 2 * stride
    x = random_input(size, seed=16)
    net.reshape(data=x.shape)
    assert net.blobs[scores_blob(net)].shape[2:] == (3, 3)
    # VGG's pools are 2 x 2, stride 2: an even input leaves no partial window.
    assert all(net.blobs[layer.bottoms[0]].shape[2] % 2 == 0
               for layer in net.layers if layer.type == "Pooling")
    # The oracle's segments hold copies of the weights, so the net itself
    # can be rarefied in place (one VGG-16 less in memory).
    segments = Segments(net, converted.read_text(), ["pool5"], tmp_path)
    result = surgery.rarefy(net, 2)
    assert result.stride == (stride // 2, stride // 2)
    assert [layer.name for layer in reduced_layers(result)] == ["pool5"]
    assert not any(layer.new_type == "DilatedPooling" for layer in result.layers)
    want = layer_level(segments, reduced_layers(result), converted.read_text(), x)
    del segments
    net.forward(data=x)
    got = np.array(net.blobs[scores_blob(net)])
    assert got.shape[2:] == (5, 5)
    assert_every_cell(got, want)
