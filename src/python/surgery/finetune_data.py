"""The batches of dense fine-tuning: random crops of the training images,
at any pixel (so that each object is seen at every phase of the output
stride, not only where the fixed grid of the whole image puts it), one
window plus whole strides in size (every cell's window lies in the crop),
mirrored at random when asked; each crop's label map is derived from the
boxes moved with it (window_labels), and its background cells thinned at
random to a ratio of the object cells when asked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from .errors import ShapeError
from .geometry import Geometry
from .window_labels import IGNORE, window_labels


@dataclass(frozen=True)
class Example:
    """One training image: the net's input (C x H x W) and its boxes
    (rows of x0, y0, x1, y1, class index)."""
    name: str
    data: np.ndarray
    boxes: np.ndarray


@dataclass(frozen=True)
class Sampling:
    """How crops are drawn: `crop` (H, W) pixels, `flip` mirrors half of
    them, `ratio` thins background; `pos_iou` and `neg_iou` label them."""
    crop: Tuple[int, int]
    background: int
    flip: bool = False
    ratio: Optional[float] = None
    pos_iou: float = 0.5
    neg_iou: float = 0.3


def aligned_crop(geo: Geometry, image_shapes: Sequence[Tuple[int, int]],
                 crop: Optional[Tuple[int, int]]) -> Tuple[int, int]:
    """(H, W) of the crops: one window plus whole strides, at most `crop`
    and no larger than any image. By default, the largest that still leaves
    each image a stride's worth of offsets, so that every object is seen at
    every phase of the stride."""
    sides = []
    for axis in range(2):
        window, stride = geo.window[axis], geo.stride[axis]
        limit = min(shape[axis] for shape in image_shapes)
        if crop is not None:
            limit = min(limit, crop[axis])
        elif limit - stride + 1 >= window:
            limit -= stride - 1
        if limit < window:
            raise ShapeError(f"crops of {limit} pixels ({'HW'[axis]}) are smaller than the "
                             f"net's {window}-pixel window: give larger images or crops")
        sides.append(window + (limit - window) // stride * stride)
    return sides[0], sides[1]


def crop_cells(geo: Geometry, crop: Tuple[int, int]) -> Tuple[int, int]:
    """The cells of a crop: the windows that fit in it."""
    return tuple((crop[a] - geo.window[a]) // geo.stride[a] + 1 for a in range(2))


def thin_background(rng: np.random.Generator, labels: np.ndarray, background: int,
                    ratio: Optional[float]) -> np.ndarray:
    """`labels` with background cells beyond `ratio` per labelled object
    cell (at least `ratio` where there are none) set to IGNORE, chosen at
    random; all kept when `ratio` is None."""
    if ratio is None:
        return labels
    out = labels.copy()
    cells = np.flatnonzero(out == background)
    keep = int(np.ceil(ratio * max(1, int(((out >= 0) & (out != background)).sum()))))
    if len(cells) > keep:
        out.flat[rng.choice(cells, len(cells) - keep, replace=False)] = IGNORE
    return out


def sample(rng: np.random.Generator, example: Example, geo: Geometry,
           how: Sampling) -> Tuple[np.ndarray, np.ndarray]:
    """One (data C x h x w, labels rows x columns) crop of `example`."""
    (h, w), (_, height, width) = how.crop, example.data.shape
    y0, x0 = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    data = example.data[:, y0:y0 + h, x0:x0 + w]
    boxes = example.boxes - np.array([x0, y0, x0, y0, 0.0])
    if how.flip and rng.random() < 0.5:
        data = data[:, :, ::-1]
        boxes = np.column_stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3:]])
    labels = window_labels(geo, (h, w), boxes, background=how.background, pos_iou=how.pos_iou,
                           neg_iou=how.neg_iou, map_shape=crop_cells(geo, how.crop))
    return (np.ascontiguousarray(data, np.float32),
            thin_background(rng, labels, how.background, how.ratio))
