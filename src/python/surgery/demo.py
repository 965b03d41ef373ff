"""The README's main job: train a small digit classifier with libcaffe (once,
cached), make it fully convolutional, paste held-out digits at known places
on a larger canvas, and read them back from one dense forward."""

from __future__ import annotations

import pathlib
from typing import List, Tuple

import numpy as np

from . import digits
from .convert import fully_convolutionalize

# (row, column) of each pasted digit's top-left corner, and which held-out
# digit goes there; some on the 4-pixel cell grid, some between cells.
PLACES = [((4, 4), 0), ((8, 52), 1), ((40, 100), 2), ((52, 20), 3), ((36, 60), 5),
          ((6, 120), 8)]
CANVAS = (92, 156)


def canvas_with_digits(images, labels) -> Tuple[np.ndarray, List[Tuple[int, int, int]]]:
    canvas = np.zeros(CANVAS, np.float32)
    truth = []
    for (y, x), k in PLACES:
        canvas[y:y + digits.SIZE, x:x + digits.SIZE] = np.maximum(
            canvas[y:y + digits.SIZE, x:x + digits.SIZE], images[k])
        truth.append((y, x, int(labels[k])))
    return canvas, truth


def detections(dense, threshold: float = 0.9):
    """Cells whose best class is a digit with probability > threshold and
    that are the strongest among their 3x3 neighbours: (row, col, digit, p)."""
    best = dense.scores[:digits.BACKGROUND].max(axis=0)
    cls = dense.scores[:digits.BACKGROUND].argmax(axis=0)
    h, w = best.shape
    found = []
    for i in range(h):
        for j in range(w):
            p = best[i, j]
            if p <= threshold or dense.argmax[i, j] == digits.BACKGROUND:
                continue
            neighbours = best[max(0, i - 1):i + 2, max(0, j - 1):j + 2]
            if p >= neighbours.max():
                found.append((i, j, int(cls[i, j]), float(p)))
    return found


def run(png: str = "dense_digits.png", out=print):
    prototxt, weights = digits.trained_model(log=out)
    result = fully_convolutionalize(prototxt, weights)
    out(str(result))
    _, (held_images, held_labels) = digits.split(*digits.digit_images())
    canvas, truth = canvas_with_digits(held_images, held_labels)
    dense = result.net.dense_forward(canvas, labels=digits.LABELS)
    out(f"\ncanvas {CANVAS[1]}x{CANVAS[0]} -> {dense.shape[0]}x{dense.shape[1]} map "
        f"(one cell per {result.geometry.window[0]}px window, stride {result.geometry.stride[0]})")
    out("best class per cell ('.' = background):")
    for row in dense.argmax:
        out("  " + "".join(digits.LABELS[c] for c in row))
    boxes = dense.boxes
    found = detections(dense)
    out("\ndigits found (window x0,y0-x1,y1):")
    for i, j, digit, p in found:
        x0, y0, x1, y1 = boxes[i, j]
        out(f"  {digit} at {x0},{y0}-{x1},{y1}  p={p:.3f}")
    out("pasted (truth):")
    hits = 0
    for y, x, digit in truth:
        hit = any(d == digit and abs(boxes[i, j][0] - x) <= 4 and abs(boxes[i, j][1] - y) <= 4
                  for i, j, d, _ in found)
        hits += hit
        out(f"  {digit} at {x},{y}-{x + 28},{y + 28}  {'found' if hit else 'MISSED'}")
    out(f"{hits}/{len(truth)} pasted digits found at their place; "
        f"{len(found) - hits} other detections")
    dense.save_png(png, cls=truth[0][2])
    out(f"map of class {truth[0][2]} beside the canvas: {pathlib.Path(png).resolve()}")
    return dense, truth, found
