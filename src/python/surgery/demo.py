"""The README's main job, for now: build a small LeNet-style net with
random (xavier-filled) weights, run it, and show its layers and output.

Later versions train the net and run it densely; see the issues."""

from __future__ import annotations

import pathlib
import tempfile

import numpy as np

from .net import Net

LENET = """
name: "demo-lenet"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 1 dim: 28 dim: 28 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 20 kernel_size: 5 weight_filler { type: "xavier" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 50 kernel_size: 5 weight_filler { type: "xavier" } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
        inner_product_param { num_output: 500 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "prob" type: "Softmax" bottom: "ip2" top: "prob" }
"""


def run(out=print) -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        prototxt = pathlib.Path(folder) / "lenet.prototxt"
        prototxt.write_text(LENET)
        net = Net(prototxt)
    out(f"{net!r}")
    out(f"{'layer':<8} {'type':<13} {'bottoms':<10} {'tops':<8} top shape")
    for layer in net.layers:
        shape = " x ".join(str(d) for d in net.blobs[layer.tops[0]].shape)
        out(f"{layer.name:<8} {layer.type:<13} {','.join(layer.bottoms):<10} "
            f"{','.join(layer.tops):<8} {shape}")
    image = np.zeros((1, 1, 28, 28), np.float32)
    image[0, 0, 6:22, 12:16] = 1.0  # a bar, roughly a "1"
    prob = net.forward(data=image)["prob"][0]
    out("prob (random weights): " + " ".join(f"{p:.3f}" for p in prob))
    out(f"argmax: {int(prob.argmax())}, sum: {prob.sum():.4f}")
    return prob
