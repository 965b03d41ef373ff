"""Runs a tile plan (tiles.py): each tile read from its source, preprocessed
as a whole image would be, forwarded, and its exact cells written into the
map (an array in memory or a MapWriter)."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Optional, Tuple

import numpy as np

from .errors import MemoryLimitError, ShapeError, SurgeryError
from .net import Net
from .preprocess import Preprocess, check_image_memory, load_mean
from .progress import progress_bar
from .tiles import TilePlan


def for_tiles(prep: Preprocess) -> Preprocess:
    """`prep` with its mean as a tile can use it: per-channel values, or a
    constant mean image. A varying mean image is resized to the image it is
    subtracted from, and a tile is not the whole image, so it is refused."""
    mean = prep.mean
    if isinstance(mean, (str, os.PathLike)):
        mean = load_mean(mean)
    if mean is None or np.ndim(mean) == 1:
        return replace(prep, mean=mean)
    values = np.asarray(mean, dtype=np.float64)
    if values.size and values.min() == values.max():
        return replace(prep, mean=values)
    raise ShapeError("a mean image is resized to the whole image, which a tiled forward never "
                     "holds: pass per-channel values instead (e.g. mean.mean(axis=(1, 2)))")


def forward_tiles(net: Net, plan: TilePlan, source, *, input: str, output: str,
                  channels: int, prep: Preprocess, into: Any,
                  progress: bool = False, label: Optional[str] = None) -> bool:
    """Fills `into` (C x H' x W': a numpy array, or a MapWriter) tile by tile,
    reading each from `source` (a sources.ImageSource);
    True if every score is finite. `prep` preprocesses each tile (its mean
    as for_tiles gives it)."""
    check_tile_memory(plan, source, channels)
    tiles = progress_bar(plan.tiles, total=len(plan), desc=label or source.name, unit="tile",
                         enabled=progress)
    finite = True
    for tile in tiles:
        _, x = prep(source.read(*tile.pixels), channels)
        scores = net.forward(**{input: x[np.newaxis]})[output][0]
        rows, columns = tile.kept
        if scores.ndim != 3 or scores.shape[1] < rows.stop or scores.shape[2] < columns.stop:
            raise SurgeryError(f"a tile of {x.shape[1]}x{x.shape[2]} pixels gave output "
                               f"{scores.shape}, fewer cells than the net's geometry says; "
                               "run this net whole (tile=None)")
        part = scores[:, rows, columns]
        finite = finite and bool(np.isfinite(part).all())
        if isinstance(into, np.ndarray):
            into[(slice(None),) + tile.cells] = part
        else:
            into.write(*tile.cells, part)
    return finite


def check_tile_memory(plan: TilePlan, source, channels: int) -> None:
    """Refuse, before the first tile runs, a plan whose largest tile would
    not fit the memory limit as read or as preprocessed (the net's own
    blobs the core checks at each forward)."""
    height, width = plan.largest
    source.check_region(height, width)
    check_image_memory(height, width, max(channels, source.bands),
                       name=f"a tile of {source.name}")


def whole_fits(net: Net, input: str, channels: int, height: int, width: int) -> bool:
    """Whether the net, shaped to a height x width input (at least its
    smallest), stays within the memory limit (asked of the guard, which
    allocates nothing to answer) and within Caffe's blob size (2^31 - 1
    values: LeNet's conv1 at 8000 x 8000 is past it)."""
    try:
        net.reshape(**{input: (1, channels, height, width)})
    except (MemoryLimitError, ShapeError):
        return False
    return True


def output_cells(net: Net, input: str, output: str, channels: int, height: int,
                 width: int) -> Tuple[int, int]:
    """(rows, columns) of output cells for a height x width input, by Caffe's
    own arithmetic (the net is reshaped; nothing runs)."""
    net.reshape(**{input: (1, channels, height, width)})
    shape = net.blobs[output].shape
    return int(shape[2]), int(shape[3])

