"""The batches of dense fine-tuning: random crops of the training images
whose cells are cells of the whole image (crops start on the output
stride's grid and measure one window plus whole strides), so a crop's label
map is a slice of the image's, computed once; mirrored at random (a window
mirrored is the mirrored crop's window, exactly); background cells thinned
at random to a ratio of the labelled ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from .errors import ShapeError
from .geometry import Geometry
from .window_labels import IGNORE


@dataclass(frozen=True)
class Example:
    """One training image: the net's input (C x H x W) and the label of
    every cell of the whole image's map."""
    name: str
    data: np.ndarray
    labels: np.ndarray


def aligned_crop(geo: Geometry, image_shapes: Sequence[Tuple[int, int]],
                 crop: Optional[Tuple[int, int]]) -> Tuple[int, int]:
    """(H, W) of the crops: one window plus whole strides, at most `crop`
    (default: the smallest image) and no larger than any image."""
    sides = []
    for axis in range(2):
        window, stride = geo.window[axis], geo.stride[axis]
        limit = min(shape[axis] for shape in image_shapes)
        if crop is not None:
            limit = min(limit, crop[axis])
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


def sample(rng: np.random.Generator, example: Example, geo: Geometry, crop: Tuple[int, int],
           flip: bool, background: int, ratio: Optional[float]) -> Tuple[np.ndarray, np.ndarray]:
    """One (data C x h x w, labels rows x columns) crop of `example`."""
    cells = crop_cells(geo, crop)
    _, height, width = example.data.shape
    sy = int(rng.integers(0, (height - crop[0]) // geo.stride[0] + 1))
    sx = int(rng.integers(0, (width - crop[1]) // geo.stride[1] + 1))
    y0, x0 = sy * geo.stride[0], sx * geo.stride[1]
    data = example.data[:, y0:y0 + crop[0], x0:x0 + crop[1]]
    labels = example.labels[sy:sy + cells[0], sx:sx + cells[1]]
    if flip and rng.random() < 0.5:
        data, labels = data[:, :, ::-1], labels[:, ::-1]
    return (np.ascontiguousarray(data, np.float32),
            thin_background(rng, np.ascontiguousarray(labels), background, ratio))
