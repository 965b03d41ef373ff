"""How far a Convolution layer's float32 output lies from the exact sum:
one layer (no pad, no bias), weights and input drawn from a standard
normal, run by surgery.Net with Net.convolution "caffe" and "winograd"; the
oracle is numpy's correlation of the same float32 values in float64.

A layer's error is max |out - exact| / max |exact| over its outputs: the
"output's scale" that the bounds in docs/threads-winograd.md are relative to. Used by
test_winograd.py and benchmarks/winograd_precision.py."""

import pathlib

import numpy as np

import surgery
from layer_references import numpy_convolution

OUTPUTS = 16


def conv_prototxt(channels, kernel, side, stride=1):
    """A net of one Convolution giving OUTPUTS maps of side x side."""
    size = (side - 1) * stride + kernel
    return f"""
layer {{ name: "data" type: "Input" top: "data"
        input_param {{ shape {{ dim: 1 dim: {channels} dim: {size} dim: {size} }} }} }}
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "out"
        convolution_param {{ num_output: {OUTPUTS} kernel_size: {kernel} stride: {stride}
                            bias_term: false }} }}
"""


def layer_errors(folder, channels, kernel, side, seed, stride=1):
    """{"caffe": error, "winograd": error} of one layer against float64."""
    path = pathlib.Path(folder) / "conv.prototxt"
    path.write_text(conv_prototxt(channels, kernel, side, stride))
    net = surgery.Net(path)
    rng = np.random.default_rng(seed)
    weights = net.params["conv"][0]
    weights[...] = rng.standard_normal(weights.shape, np.float32)
    x = rng.standard_normal(net.blobs["data"].shape, np.float32)
    exact = numpy_convolution(x, weights.astype(np.float64), np.zeros(OUTPUTS), stride, 0, 1)
    del weights  # a view held across forwards would make Winograd transform at each
    errors = {}
    for algorithm in ("caffe", "winograd"):
        net.convolution = algorithm
        out = net.forward(data=x)["out"]
        errors[algorithm] = float(np.abs(out - exact).max() / np.abs(exact).max())
    assert net.winograd_layers == ["conv"], "the layer ran through Caffe's path"
    return errors
