"""Cluttered digit canvases for the fine-tuning tests: MNIST digits pasted
apart from each other among fragments of other digits (strokes that are no
digit), written as PNG files with a box file (image,x0,y0,x1,y1,label)."""

import csv
import gzip
import pathlib

import numpy as np
from PIL import Image

SIZE = 28


def _idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_mnist(folder):
    """MNIST's test set in `folder`: (images N x 28 x 28 uint8, labels N)."""
    folder = pathlib.Path(folder)
    return (_idx(folder / "t10k-images-idx3-ubyte.gz"),
            _idx(folder / "t10k-labels-idx1-ubyte.gz"))


def _free(taken, y, x, size, gap):
    return all(abs(y - ty) >= size + gap or abs(x - tx) >= size + gap for ty, tx in taken)


def canvas(rng, images, labels, shape=(100, 100), digits=3, fragments=5):
    """(H x W float image in [0, 1], boxes [(x0, y0, x1, y1, label)]): each
    digit's box is its 28 x 28 MNIST cell (the window the classifier took)."""
    out = np.zeros(shape, np.float32)
    boxes, taken = [], []
    while len(boxes) < digits:
        y, x = rng.integers(0, shape[0] - SIZE + 1), rng.integers(0, shape[1] - SIZE + 1)
        if not _free(taken, y, x, SIZE, 2):
            continue
        n = rng.integers(len(images))
        out[y:y + SIZE, x:x + SIZE] = images[n] / 255.0
        boxes.append((int(x), int(y), int(x) + SIZE, int(y) + SIZE, str(labels[n])))
        taken.append((y, x))
    for _ in range(fragments):
        h, w = rng.integers(8, 15, size=2)
        n = rng.integers(len(images))
        sy, sx = rng.integers(4, SIZE - 4 - h + 1), rng.integers(4, SIZE - 4 - w + 1)
        piece = images[n][sy:sy + h, sx:sx + w] / 255.0
        for _ in range(50):
            y, x = rng.integers(0, shape[0] - h + 1), rng.integers(0, shape[1] - w + 1)
            # A fragment keeps clear of the digits' strokes (their 20 x 20 core).
            if all(y + h <= ty + 4 or y >= ty + 24 or x + w <= tx + 4 or x >= tx + 24
                   for ty, tx in taken):
                out[y:y + h, x:x + w] = np.maximum(out[y:y + h, x:x + w], piece)
                break
    return out, boxes


def write_set(folder, rng, images, labels, count, **kwargs):
    """`count` canvases as PNG files in `folder` and their box file; returns
    (image paths, box file path)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    with open(folder / "boxes.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "x0", "y0", "x1", "y1", "label"])
        for k in range(count):
            image, boxes = canvas(rng, images, labels, **kwargs)
            name = f"canvas{k:03d}.png"
            Image.fromarray((image * 255).round().astype(np.uint8)).save(folder / name)
            paths.append(str(folder / name))
            writer.writerows([name, *box] for box in boxes)
    return paths, str(folder / "boxes.csv")


def learning_sets(folder, images, labels):
    """The fine-tuning proof's canvases: 30 to train on, 30 to pick the best
    snapshot with, 30 to score; each set's digits drawn from its own part
    of `images` (so the scored digits were never seen)."""
    rng = np.random.default_rng(0)
    folder = pathlib.Path(folder)
    return (write_set(folder / "train", rng, images[:5000], labels[:5000], 30),
            write_set(folder / "val", rng, images[5000:7500], labels[5000:7500], 30),
            write_set(folder / "test", rng, images[7500:], labels[7500:], 30))
