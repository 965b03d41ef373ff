"""libcaffe recipe patches 0011 to 0013 against numpy's definitions, over
geometries that reach each of their branches: im2col's runs of copied
columns (strides 1 to 4, pads, dilation, windows past the edge, strides 2
and 4 gathered eight at a time), max pooling
a row at a time (values and argmax indices exact, ties and NaN as Caffe's
loop keeps them), LRN's beta 0.75 by square roots, and fully connected
layers run as convolutions through the streamed GEMM, one image and a batch."""

import numpy as np
import pytest

import surgery
from surgery.testing import randomize, with_input

from layer_references import numpy_convolution, numpy_lrn, numpy_max_pool


def layer_net(tmp_path, layer, shape):
    path = tmp_path / "layer.prototxt"
    path.write_text(with_input(layer, shape))
    return surgery.Net(path)


# (kernel, stride, pad, dilation) on an input of 23 x 29, then on 13 x 157,
# whose rows are long enough for patch 0013's vector gathers (strides 2 and 4:
# eight outputs at a time while the loads stay inside the row) and their
# scalar tails.
CONVOLUTIONS = [(3, 1, 1, 1), (3, 1, 0, 1), (5, 1, 2, 1), (11, 4, 0, 1), (11, 4, 5, 1),
                (3, 2, 1, 1), (3, 3, 2, 1), (3, 1, 2, 2), (3, 2, 4, 3), (4, 2, 3, 1)]
WIDE_CONVOLUTIONS = [(11, 4, 0, 1), (11, 4, 5, 1), (7, 2, 3, 1), (3, 2, 0, 1), (3, 2, 2, 2),
                     (4, 4, 1, 1), (3, 4, 0, 3)]


@pytest.mark.parametrize("kernel,stride,pad,dilation,size",
                         [(*c, (23, 29)) for c in CONVOLUTIONS]
                         + [(*c, (13, 157)) for c in WIDE_CONVOLUTIONS])
def test_convolution_columns_equal_numpy(tmp_path, kernel, stride, pad, dilation, size):
    layer = (f'layer {{ name: "out" type: "Convolution" bottom: "data" top: "out" '
             f'convolution_param {{ num_output: 5 kernel_size: {kernel} stride: {stride} '
             f'pad: {pad} dilation: {dilation} }} }}')
    shape = (2, 3, *size)
    net = layer_net(tmp_path, layer, shape)
    randomize(net, seed=7)
    x = np.random.default_rng(kernel * 100 + stride * 10 + pad).standard_normal(shape)
    x = x.astype(np.float32)
    out = net.forward(data=x)["out"]
    weights, bias = (p.astype(np.float64) for p in net.params["out"])
    reference = numpy_convolution(x, weights, bias, stride, pad, dilation)
    assert out.shape == reference.shape
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-5)


# Weights of 4M values or more on at most 128 output columns take patch
# 0012's streamed GEMM (on AVX2 CPUs; BLAS elsewhere; patch 0019 lowers the
# floor to 1M on up to 64 columns with the AVX-512 kernel): fc6-like (a 3 x 3
# kernel over 1024 channels, 8 x 8 outputs: whole tiles) and a 1 x 1 layer of
# 1000 outputs on 5 x 7 (a partial tile; two images share one GEMM).
@pytest.mark.parametrize("channels,outputs,kernel,size,batch",
                         [(1024, 456, 3, 10, 1), (4200, 1000, 1, (5, 7), 2)])
def test_fully_connected_convolutions_equal_numpy(tmp_path, channels, outputs, kernel, size,
                                                   batch):
    height, width = size if isinstance(size, tuple) else (size, size)
    layer = (f'layer {{ name: "out" type: "Convolution" bottom: "data" top: "out" '
             f'convolution_param {{ num_output: {outputs} kernel_size: {kernel} }} }}')
    shape = (batch, channels, height, width)
    net = layer_net(tmp_path, layer, shape)
    randomize(net, seed=9)
    x = np.random.default_rng(channels).standard_normal(shape).astype(np.float32)
    out = net.forward(data=x)["out"]
    weights, bias = (p.astype(np.float64) for p in net.params["out"])
    reference = numpy_convolution(x, weights, bias, 1, 0, 1)
    # float32 rounding of sums of 9216 and 4200 terms: bounded by a part of
    # the sum of the terms' magnitudes.
    magnitude = numpy_convolution(np.abs(x), np.abs(weights), np.abs(bias), 1, 0, 1)
    assert out.shape == reference.shape
    assert np.all(np.abs(out - reference) <= 1e-6 * magnitude + 1e-6)


# (kernel, stride, pad) on inputs of 23 x 29, 8 x 9 and 11 x 77 (rows of up
# to 77 outputs: sixteen at a time where the CPU has AVX-512, recipe patch
# 0017, then four at a time, then one by one).
POOLINGS = [(3, 2, 0), (3, 2, 1), (2, 2, 0), (3, 1, 1), (3, 3, 1), (5, 3, 2), (2, 1, 0),
            (7, 1, 3), (4, 4, 0), (9, 2, 0)]


@pytest.mark.parametrize("height,width", [(23, 29), (8, 9), (11, 77)])
@pytest.mark.parametrize("kernel,stride,pad", POOLINGS)
def test_max_pooling_values_and_indices_equal_caffes_loop(tmp_path, kernel, stride, pad, height,
                                                          width):
    layer = (f'layer {{ name: "out" type: "Pooling" bottom: "data" top: "out" top: "mask" '
             f'pooling_param {{ pool: MAX kernel_size: {kernel} stride: {stride} '
             f'pad: {pad} }} }}')
    shape = (2, 3, height, width)
    net = layer_net(tmp_path, layer, shape)
    rng = np.random.default_rng(kernel * 100 + stride * 10 + pad)
    # Small integers, so windows hold ties (the first one wins), and NaNs
    # (they never do), one plane wholly NaN (its windows keep -FLT_MAX, -1).
    x = rng.integers(-3, 4, shape).astype(np.float32)
    x[rng.random(shape) < 0.05] = np.nan
    x[1, 2] = np.nan
    outputs = net.forward(data=x)
    values, indices = numpy_max_pool(x, kernel, stride, pad)
    assert outputs["out"].shape == values.shape
    np.testing.assert_array_equal(outputs["out"], values)
    np.testing.assert_array_equal(outputs["mask"], indices.astype(np.float32))


@pytest.mark.parametrize("beta", [0.75, 0.5, 1.3])
def test_lrn_equals_numpy(tmp_path, beta):
    layer = (f'layer {{ name: "out" type: "LRN" bottom: "data" top: "out" '
             f'lrn_param {{ local_size: 5 alpha: 0.0001 beta: {beta} k: 2 }} }}')
    shape = (2, 16, 11, 13)
    net = layer_net(tmp_path, layer, shape)
    x = (np.random.default_rng(3).standard_normal(shape) * 40).astype(np.float32)
    out = net.forward(data=x)["out"]
    reference = numpy_lrn(x, 5, 0.0001, beta, 2)
    np.testing.assert_allclose(out, reference, rtol=1e-6, atol=1e-7)
