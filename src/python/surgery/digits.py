"""A small digit classifier trained here with libcaffe's own solver, on the
digits that ship with scikit-learn: the bundled default model of the demo.

Classes 0-9 are digits, class 10 is background (blank, or a digit too far
off-centre), so a dense map can say "nothing here"."""

from __future__ import annotations

import hashlib
import os
import pathlib
from typing import Tuple

import numpy as np

from . import _core
from .atomic_files import replacing

BACKGROUND = 10
LABELS = [str(d) for d in range(10)] + ["."]
SIZE = 28

LAYERS = """
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 16 kernel_size: 5 weight_filler { type: "xavier" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 32 kernel_size: 5 weight_filler { type: "xavier" } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
        inner_product_param { num_output: 128 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 11 weight_filler { type: "xavier" } } }
"""
BATCH = 64
TRAIN_NET = f"""name: "digits"
layer {{ name: "data" type: "Input" top: "data" top: "label"
        input_param {{ shape {{ dim: {BATCH} dim: 1 dim: {SIZE} dim: {SIZE} }} shape {{ dim: {BATCH} }} }} }}
{LAYERS}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }}
"""
DEPLOY_NET = f"""name: "digits"
layer {{ name: "data" type: "Input" top: "data"
        input_param {{ shape {{ dim: 1 dim: 1 dim: {SIZE} dim: {SIZE} }} }} }}
{LAYERS}
layer {{ name: "prob" type: "Softmax" bottom: "ip2" top: "prob" }}
"""
SOLVER = """type: "SGD" base_lr: 0.01 momentum: 0.9 weight_decay: 0.0005
lr_policy: "inv" gamma: 0.0001 power: 0.75 random_seed: 1"""
ITERATIONS = 800
SEED = 0


def digit_images() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 digits as 28 x 28 floats in [0, 1] (20 x 20 box,
    centred, as MNIST lays its digits out), and their labels."""
    from sklearn.datasets import load_digits
    from skimage.transform import resize
    digits = load_digits()
    small = digits.images / 16.0
    out = np.zeros((len(small), SIZE, SIZE), np.float32)
    for k, image in enumerate(small):
        out[k, 4:24, 4:24] = resize(image, (20, 20), order=1, mode="constant")
    return out, digits.target.astype(np.int64)


def split(images, labels):
    """First 1500 to train on, the rest held out (the demo pastes those)."""
    return (images[:1500], labels[:1500]), (images[1500:], labels[1500:])


def shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(image)
    src = image[max(0, -dy):SIZE - max(0, dy), max(0, -dx):SIZE - max(0, dx)]
    out[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out


def batch(rng, images, labels):
    """Digits jittered by up to 2 pixels (a cell's window is never further
    from a digit on a stride-4 grid), and one in four background: blank or
    a digit shifted 9-14 pixels out of the window."""
    x = np.zeros((BATCH, 1, SIZE, SIZE), np.float32)
    y = np.zeros(BATCH, np.float32)
    for k in range(BATCH):
        n = rng.integers(len(images))
        if rng.random() < 0.25:
            y[k] = BACKGROUND
            if rng.random() < 0.7:
                d = rng.integers(9, 15) * rng.choice([-1, 1])
                dy, dx = (d, rng.integers(-6, 7)) if rng.random() < 0.5 else (rng.integers(-6, 7), d)
                x[k, 0] = shifted(images[n], int(dy), int(dx))
        else:
            y[k] = labels[n]
            x[k, 0] = shifted(images[n], *map(int, rng.integers(-2, 3, size=2)))
    return x, y


def cache_folder() -> pathlib.Path:
    root = os.environ.get("CAFFE_SURGERY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "caffe-surgery")
    return pathlib.Path(root) / "demo"


def trained_model(log=print) -> Tuple[pathlib.Path, pathlib.Path]:
    """(deploy prototxt, caffemodel), trained once and cached by recipe."""
    # "v3": libcaffe's recipe patches 0020 and 0021 changed the rounding of
    # training's convolutions, and so the weights it ends with; a model
    # trained by an older libcaffe is not reused where the docs quote what
    # this one finds.
    recipe = "\n".join([TRAIN_NET, DEPLOY_NET, SOLVER, str(ITERATIONS), str(SEED), "v3"])
    key = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    folder = cache_folder()
    prototxt, weights = folder / f"digits-{key}.prototxt", folder / f"digits-{key}.caffemodel"
    if prototxt.exists() and weights.exists():
        log(f"trained digit classifier (cached): {weights}")
        return prototxt, weights
    folder.mkdir(parents=True, exist_ok=True)
    (train_images, train_labels), _ = split(*digit_images())
    trainer = _core.Trainer(SOLVER, TRAIN_NET)
    rng = np.random.default_rng(SEED)
    for it in range(ITERATIONS):
        x, y = batch(rng, train_images, train_labels)
        loss = trainer.step({"data": x, "label": y})
        if (it + 1) % 200 == 0:
            log(f"  training iteration {it + 1}/{ITERATIONS}: loss {loss:.3f}")
    # Written beside, then renamed: a cache entry appears whole or not at all.
    with replacing(str(prototxt)) as f:  # in place after the weights
        f.write(DEPLOY_NET)
        trainer.save_weights(str(weights))
    log(f"trained digit classifier: {weights}")
    return prototxt, weights
