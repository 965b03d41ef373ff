"""Fuzz cases: everything a user hands surgery, mutated.

Each generator takes a numpy Generator and a scratch folder and returns
(family, callable). The callable does what a user would: load, convert,
run; it either returns or raises.
"""

from __future__ import annotations

import pathlib
import re
import warnings

import numpy as np

import surgery
from surgery.testing import fixtures

FIXTURES = fixtures()
SEED_TEXTS = {
    "lenet": FIXTURES / "lenet_mnist_trained" / "lenet.prototxt",
    "lenet-train": FIXTURES / "bvlc_caffe_mnist_lenet" / "lenet_train_test.prototxt",
    "squeezenet": FIXTURES / "squeezenet" / "SqueezeNet_v1.1_deploy.prototxt",
}
TINY = """name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 9 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 3 kernel_size: 3 pad: 1 } }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "flat" type: "Flatten" bottom: "pool" top: "flat" }
layer { name: "fc" type: "InnerProduct" bottom: "flat" top: "fc" inner_product_param { num_output: 4 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
V1_TINY = """name: "v1"
input: "data" input_dim: 1 input_dim: 1 input_dim: 8 input_dim: 8
layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv"
         convolution_param { num_output: 2 kernel_size: 3 } }
layers { name: "fc" type: INNER_PRODUCT bottom: "conv" top: "fc" inner_product_param { num_output: 3 } }
"""
LAYER_TYPES = ["Convolution", "Pooling", "InnerProduct", "ReLU", "Softmax", "Concat", "Eltwise",
               "Flatten", "Reshape", "BatchNorm", "Scale", "Deconvolution", "LRN", "Dropout",
               "Crop", "Slice", "Split", "Python", "Data", "HDF5Data", "Frobnicate", "",
               "SoftmaxWithLoss", "Accuracy", "ArgMax", "Embed", "LSTM", "Input", "Tile", "SPP"]
NUMBERS = ["0", "-1", "1", "2", "3", "7", "65536", "2147483647", "2147483648", "99999999999",
           "-2147483648", "1e9", "0.5", "nan", "inf", "-0", "3.7"]


def _text_mutation(rng, text: str) -> str:
    lines = text.splitlines()
    for _ in range(int(rng.integers(1, 4))):
        op = rng.integers(8)
        k = int(rng.integers(len(lines))) if lines else 0
        if op == 0 and lines:
            del lines[k]
        elif op == 1 and lines:
            lines.insert(k, lines[int(rng.integers(len(lines)))])
        elif op == 2 and len(lines) > 1:
            j = int(rng.integers(len(lines)))
            lines[k], lines[j] = lines[j], lines[k]
        elif op == 3 and lines:
            numbers = list(re.finditer(r"-?\d+(\.\d+)?", lines[k]))
            if numbers:
                m = numbers[int(rng.integers(len(numbers)))]
                lines[k] = lines[k][:m.start()] + str(rng.choice(NUMBERS)) + lines[k][m.end():]
        elif op == 4:
            text2 = "\n".join(lines)
            types = list(re.finditer(r'type: "([^"]*)"', text2))
            if types:
                m = types[int(rng.integers(len(types)))]
                text2 = text2[:m.start(1)] + str(rng.choice(LAYER_TYPES)) + text2[m.end(1):]
                lines = text2.splitlines()
        elif op == 5:
            text2 = "\n".join(lines)
            names = list(re.finditer(r'(bottom|top): "([^"]*)"', text2))
            if names:
                m = names[int(rng.integers(len(names)))]
                other = names[int(rng.integers(len(names)))].group(2)
                new = other if rng.random() < 0.7 else "nowhere"
                text2 = text2[:m.start(2)] + new + text2[m.end(2):]
                lines = text2.splitlines()
        elif op == 6 and lines:
            junk = "".join(chr(int(c)) for c in rng.integers(32, 127, int(rng.integers(1, 6))))
            pos = int(rng.integers(len(lines[k]) + 1))
            lines[k] = lines[k][:pos] + junk + lines[k][pos:]
        elif op == 7:
            cut = int(rng.integers(len("\n".join(lines)) + 1))
            lines = "\n".join(lines)[:cut].splitlines()
    return "\n".join(lines)


def prototxt_case(rng, folder: pathlib.Path):
    sources = list(SEED_TEXTS.values())
    pick = int(rng.integers(len(sources) + 2))
    text = TINY if pick == len(sources) else V1_TINY if pick == len(sources) + 1 \
        else sources[pick].read_text()
    mutated = _text_mutation(rng, text)
    path = folder / "case.prototxt"
    path.write_text(mutated)

    def case():
        net = surgery.Net(path)
        surgery.fully_convolutionalize(net)
        inputs = {name: np.ones(net.blobs[name].shape, np.float32) for name in net.inputs}
        net.forward(**inputs)
    return "prototxt", case


def caffemodel_case(rng, folder: pathlib.Path):
    proto = FIXTURES / "lenet_mnist_trained" / "lenet.prototxt"
    data = bytearray((FIXTURES / "lenet_mnist_trained" / "lenet_iter_10000.caffemodel").read_bytes())
    op = int(rng.integers(5))
    if op == 0:
        data = data[:int(rng.integers(len(data)))]
    elif op == 1:
        for _ in range(int(rng.integers(1, 30))):
            bit = int(rng.integers(len(data) * 8))
            data[bit // 8] ^= 1 << (bit % 8)
    elif op == 2:
        start = int(rng.integers(len(data)))
        data[start:start + int(rng.integers(1, 64))] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    elif op == 3:
        data = bytearray(rng.integers(0, 256, int(rng.integers(0, 4096)), dtype=np.uint8).tobytes())
    else:
        data = bytearray(b"")
    model = folder / "case.caffemodel"
    model.write_bytes(bytes(data))

    def case():
        net = surgery.Net(proto, model)
        surgery.fully_convolutionalize(net)
        surgery.dense_forward(net, np.ones((36, 40), np.float32))
    return "caffemodel", case


DTYPES = [np.uint8, np.int16, np.int64, np.float16, np.float32, np.float64, np.bool_,
          np.complex64, object]


def api_case(rng, folder: pathlib.Path):
    op = int(rng.integers(6))
    lenet = (FIXTURES / "lenet_mnist_trained" / "lenet.prototxt",
             FIXTURES / "lenet_mnist_trained" / "lenet_iter_10000.caffemodel")
    if op == 0:  # images of every dtype / ndim / channel count / size
        ndim = int(rng.integers(0, 5))
        shape = tuple(int(rng.choice([0, 1, 3, 5, 20, 28, 40])) for _ in range(ndim))
        dtype = DTYPES[int(rng.integers(len(DTYPES)))]

        def case():
            net = surgery.Net(*lenet)
            surgery.fully_convolutionalize(net)
            image = np.zeros(shape, dtype=dtype) if dtype is not object else np.empty(shape, object)
            surgery.dense_forward(net, image)
    elif op == 1:  # huge images, refused before allocating
        side = int(rng.choice([30000, 100000, 2 ** 20]))

        def case():
            # Such an image is tiled (no layer's blob holds it whole); what
            # must be refused before it is allocated is its map, under a
            # limit it does not fit (LeNet: 10 values per 4x4 pixels).
            surgery.set_memory_limit(256 << 20)
            net = surgery.Net(*lenet)
            surgery.fully_convolutionalize(net)
            surgery.dense_forward(net, np.broadcast_to(np.float32(0), (side, side)))
    elif op == 2:  # NaN / Inf weights
        value = float(rng.choice([np.nan, np.inf, -np.inf, 1e38]))

        def case():
            net = surgery.Net(*lenet)
            net.params["ip1"][0][...] = value
            surgery.fully_convolutionalize(net)
            with warnings.catch_warnings():
                # Non-finite scores warn (tests/python/test_runtime.py checks
                # that); here only a crash or an untyped error counts.
                warnings.simplefilter("ignore", surgery.NumericWarning)
                surgery.dense_forward(net, np.ones((40, 40), np.float32))
    elif op == 3:  # preprocessing arguments
        mean = [None, [1.0], [1.0, 2.0], np.zeros((1, 5, 5)), np.zeros((3, 4, 4)), "absent.npy",
                np.zeros((2, 2, 2, 2))][int(rng.integers(7))]
        swap = [None, (0,), (1, 0), (2, 1, 0), (0, 0)][int(rng.integers(5))]
        size = [None, (28, 28), (0, 10), (-5, 30), (40, 1e9), (2 ** 31, 2)][int(rng.integers(6))]
        scale = [None, 1.0, float("nan"), -3.0][int(rng.integers(4))]

        def case():
            net = surgery.Net(*lenet)
            surgery.fully_convolutionalize(net)
            preprocess = surgery.Preprocess(mean=mean, channel_swap=swap, size=size,
                                            raw_scale=scale)
            surgery.dense_forward(net, np.ones((40, 40), np.float32), preprocess=preprocess)
    elif op == 4:  # reshape and forward with odd shapes and names
        shape = [int(rng.choice([-1, 0, 1, 2, 28, 2 ** 16, 2 ** 31 - 1])) for _ in range(int(rng.integers(0, 6)))]
        name = ["data", "prob", "nope", ""][int(rng.integers(4))]

        def case():
            net = surgery.Net(*lenet)
            surgery.fully_convolutionalize(net)
            net.reshape(**{name: shape})
            net.forward(**{name: np.ones([max(0, min(d, 64)) for d in shape], np.float32)})
    else:  # surgery arguments
        suffix = [None, "", "-conv", "x" * 1000, "\x00"][int(rng.integers(5))]
        shape = [None, (1, 1, 28, 28), (1, 1, 27, 27), (0, 1, 28, 28), (1, 2, 28, 28), (1,),
                 {"nope": (1, 1, 28, 28)}][int(rng.integers(7))]

        def case():
            net = surgery.Net(*lenet)
            surgery.fully_convolutionalize(net, suffix=suffix, input_shape=shape)
            net.forward(data=np.ones((1, 1, 32, 32), np.float32))
    return "api", case


GENERATORS = [prototxt_case, caffemodel_case, api_case]
