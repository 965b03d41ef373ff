"""The quick start's main job: train a small digit classifier with libcaffe (once,
cached), make it fully convolutional, paste held-out digits at known places
on a larger canvas, and read them back from one dense forward. With a
stride, the net is then rarefied to it and both maps are drawn side by side."""

from __future__ import annotations

import pathlib
from typing import List, Optional, Tuple

import numpy as np

from . import digits
from .atomic_files import Outputs
from .convert import fully_convolutionalize
from .dense import dense_forward
from .overlay import save_strides_picture
from .rarefy import rarefy

# (row, column) of each pasted digit's top-left corner, and which held-out
# digit goes there; some on the 4-pixel cell grid, some between cells.
PLACES = [((4, 4), 0), ((8, 52), 1), ((40, 100), 2), ((52, 20), 3), ((36, 60), 5),
          ((6, 120), 8)]
CANVAS = (92, 156)
# A digit counts as found where its cell is this sure of it.
THRESHOLD = 0.9


def canvas_with_digits(images, labels) -> Tuple[np.ndarray, List[Tuple[int, int, int]]]:
    canvas = np.zeros(CANVAS, np.float32)
    truth = []
    for (y, x), k in PLACES:
        canvas[y:y + digits.SIZE, x:x + digits.SIZE] = np.maximum(
            canvas[y:y + digits.SIZE, x:x + digits.SIZE], images[k])
        truth.append((y, x, int(labels[k])))
    return canvas, truth


def run(png: str = "dense_digits.png", out=print, stride: Optional[int] = None,
        stride_png: str = "dense_digits_strides.png"):
    outputs = Outputs()  # both pictures checked before the minutes of training
    outputs.claim(png, "--png")
    if stride is not None:
        outputs.claim(stride_png, "--stride-png")
    prototxt, weights = digits.trained_model(log=out)
    result = fully_convolutionalize(prototxt, weights)
    out(str(result))
    _, (held_images, held_labels) = digits.split(*digits.digit_images())
    canvas, truth = canvas_with_digits(held_images, held_labels)
    dense = dense_forward(result.net, canvas, labels=digits.LABELS)
    out(f"\ncanvas {CANVAS[1]}x{CANVAS[0]} -> {dense.shape[0]}x{dense.shape[1]} map "
        f"(one cell per {result.geometry.window[0]}px window, stride {result.geometry.stride[0]})")
    out("best class per cell ('.' = background):")
    for row in dense.argmax:
        out("  " + "".join(digits.LABELS[c] for c in row))
    # Global suppression: on this canvas, cells beside a digit see a shifted
    # digit and often name it otherwise; one box per pasted digit is the aim.
    found = dense.detections(threshold=THRESHOLD, background=digits.BACKGROUND,
                             nms_mode="global")
    out("\ndigits found (box x0,y0-x1,y1):")
    for d in found:
        x0, y0, x1, y1 = d.box
        out(f"  {d.label} at {x0},{y0}-{x1},{y1}  p={d.score:.3f}")
    out("pasted (truth):")
    hits = 0
    for y, x, digit in truth:
        hit = any(d.cls == digit and abs(d.box[0] - x) <= 4 and abs(d.box[1] - y) <= 4
                  for d in found)
        hits += hit
        out(f"  {digit} at {x},{y}-{x + 28},{y + 28}  {'found' if hit else 'MISSED'}")
    out(f"{hits}/{len(truth)} pasted digits found at their place; "
        f"{len(found) - hits} other detections")
    dense.save_picture(png, cls=truth[0][2], detections=found)
    out(f"map of class {truth[0][2]} over the canvas, with the digits found: "
        f"{pathlib.Path(png).resolve()}")
    if stride is not None:
        finer_map(result.net, dense, truth, canvas, stride, stride_png, out)
    return dense, truth, found


def finer_map(net, dense, truth, canvas, stride: int, png: str, out=print):
    """Rarefies `net` to `stride` (in place), maps the canvas again, says
    where the best cell of a digit pasted between the coarse cells lies at
    each stride, and draws both maps side by side into `png`."""
    coarse = dense.geometry.stride[0]
    out(f"\n{rarefy(net, stride=stride)}")
    fine = dense_forward(net, canvas, labels=digits.LABELS)
    y, x, digit = next(((y, x, d) for y, x, d in truth if y % coarse or x % coarse), truth[0])
    out(f"digit {digit} pasted at {x},{y}: its best cell nearby has its window at")
    for m in (dense, fine):
        boxes = m.boxes
        near = (abs(boxes[..., 0] - x) <= coarse) & (abs(boxes[..., 1] - y) <= coarse)
        i, j = np.unravel_index(np.argmax(np.where(near, m.scores[digit], -np.inf)), m.shape)
        x0, y0, _, _ = boxes[i, j]
        out(f"  {x0},{y0} at stride {m.geometry.stride[0]} ({m.shape[0]}x{m.shape[1]} map)")
    save_strides_picture([dense, fine], png, cls=digit)
    out(f"maps of class {digit} at strides {coarse} and {stride}, side by side: "
        f"{pathlib.Path(png).resolve()}")
    return fine
