"""Exact tiled dense forward: a map of an image too large to run whole,
made of tiles whose stitched cells equal the whole-image forward.

Why tiles need overlap, and where it must be: along one axis, output cell i
depends on the input pixels ``[offset + i * stride, offset + i * stride +
size)`` (``Geometry.receptive_field`` and ``receptive_offset``; the offset is
negative where layers pad). Run on a tile, the net pads the *tile's* borders
with zeros (and pools a tile's last, partial windows), where the whole image
has real pixels. So a tile's cells whose receptive field crosses a tile
border that is not also an image border see zeros instead of the pixels
there and differ from the whole-image forward: the seams. Those cells are
not kept; a neighbouring tile, overlapping by the receptive field, computes
them exactly.

Tile origins lie on the stride grid (multiples of ``Geometry.stride``), so
every layer's grid in a tile coincides with its grid over the whole image,
tile cell i' is whole-image cell ``origin / stride + i'``, and a tile ending
at the image's edge ends every layer exactly where the whole image does.
A cell whose receptive field lies inside the tile (or leaves it only across
an image border) then reads exactly the same numbers through every layer:
padding inside the tile only ever stands for pixels beyond the receptive
field, because a padded position's own receptive field starts before the
tile or ends after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

from .errors import ShapeError, SurgeryError
from .geometry import Geometry
from .memory_budget import check_memory

TileLike = Union[int, Sequence[int]]

# An AxisTile as Python holds it (the object, its dict and five ints),
# rounded up: what a plan costs per tile along an axis.
AXIS_TILE_BYTES = 512


@dataclass(frozen=True)
class AxisTile:
    """One tile along one axis: pixels ``[origin, origin + length)``; of its
    own cells it keeps ``[keep_from, keep_to)``, which are whole-image cells
    ``first_cell ..`` (``origin / stride + keep_from``)."""
    origin: int
    length: int
    keep_from: int
    keep_to: int
    first_cell: int

    @property
    def cells(self) -> int:
        return self.keep_to - self.keep_from


@dataclass(frozen=True)
class Tile:
    """A tile of the image: rows ``y``, columns ``x``."""
    y: AxisTile
    x: AxisTile

    @property
    def pixels(self) -> Tuple[slice, slice]:
        """The tile's region of the image (rows, columns)."""
        return (slice(self.y.origin, self.y.origin + self.y.length),
                slice(self.x.origin, self.x.origin + self.x.length))

    @property
    def kept(self) -> Tuple[slice, slice]:
        """The exact cells, in the tile's own map."""
        return slice(self.y.keep_from, self.y.keep_to), slice(self.x.keep_from, self.x.keep_to)

    @property
    def cells(self) -> Tuple[slice, slice]:
        """Where those cells go in the whole image's map."""
        return (slice(self.y.first_cell, self.y.first_cell + self.y.cells),
                slice(self.x.first_cell, self.x.first_cell + self.x.cells))


@dataclass(frozen=True)
class TilePlan:
    """Tiles covering an image; every cell of the whole map is kept by exactly
    one. Only the tiles along each axis are held: the tiles themselves (rows
    times columns of them, millions for a large image in small tiles) are
    made one at a time as they are visited."""
    rows: Tuple[AxisTile, ...]
    columns: Tuple[AxisTile, ...]
    image_shape: Tuple[int, int]
    map_shape: Tuple[int, int]
    tile: Tuple[int, int]

    @property
    def tiles(self) -> Iterator[Tile]:
        return (Tile(y, x) for y in self.rows for x in self.columns)

    @property
    def largest(self) -> Tuple[int, int]:
        """(H, W) pixels of the largest tile: the region a forward reads at most."""
        return max(t.length for t in self.rows), max(t.length for t in self.columns)

    def __len__(self) -> int:
        return len(self.rows) * len(self.columns)

    def __iter__(self) -> Iterator[Tile]:
        return self.tiles


def as_tile(tile: TileLike) -> Tuple[int, int]:
    """`tile` as (H, W) pixels: one int for a square, or two positive ints."""
    try:
        h, w = (tile, tile) if isinstance(tile, int) else tuple(tile)
        if isinstance(h, bool) or isinstance(w, bool) or int(h) != h or int(w) != w \
                or h < 1 or w < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ShapeError(f"tile must be a positive size or (H, W) in pixels, not {tile!r}") \
            from None
    return int(h), int(w)


def smallest_tile(geo: Geometry, axis: int) -> int:
    """The shortest tile (pixels along `axis`) that keeps at least one exact
    cell away from the image's borders, so that tiles advance."""
    stride, offset = geo.stride[axis], geo.receptive_offset[axis]
    size = geo.receptive_field[axis]
    return max(size + offset + stride * _skip(geo, axis), geo.min_input[axis])


def _skip(geo: Geometry, axis: int) -> int:
    """Cells at a tile's start (away from the image's start) that see the
    tile's padding: those whose receptive field begins before the tile."""
    return math.ceil(-geo.receptive_offset[axis] / geo.stride[axis])


def plan_axis(n: int, tile: int, geo: Geometry, axis: int,
              cells_of: Callable[[int], int]) -> List[AxisTile]:
    """Tiles of at most `tile` pixels (the last may reach `tile + stride - 1`,
    so that it is never shorter than the others) over `n` pixels along
    `axis`. `cells_of(length)` is the net's number of output cells for an
    input of that length (Caffe's own arithmetic, asked of the net)."""
    stride, offset = geo.stride[axis], geo.receptive_offset[axis]
    size = geo.receptive_field[axis]
    skip = _skip(geo, axis)
    if n <= tile:
        return [AxisTile(0, n, 0, cells_of(n), 0)]
    least = smallest_tile(geo, axis)
    if tile < least:
        raise ShapeError(f"tiles of {tile} pixels are too small for this net (its receptive "
                         f"field is {size} pixels, stride {stride}, offset {offset}): give "
                         f"tiles of at least {least} pixels along {'HW'[axis]}")
    # Every tile but the last advances by the same number of pixels.
    advance = ((tile - size - offset) // stride + 1 - skip) * stride
    count = -(-(n - tile) // advance) + 1
    check_memory(count * AXIS_TILE_BYTES, f"a plan of {count} tiles along {'HW'[axis]} "
                 f"({n} pixels in tiles of {tile})", "give larger tiles")
    out: List[AxisTile] = []
    origin, done = 0, 0  # done: whole-image cells kept so far
    while True:
        if n - origin <= tile:
            # The last tile ends at the image's edge; it starts early enough to
            # be a full tile (it may overlap its neighbour by more than needed).
            origin = min(origin, max(0, (n - tile) // stride * stride))
            length = n - origin
            first, end = done - origin // stride, cells_of(length)
            if end > first:  # else the tiles before already kept every cell
                out.append(AxisTile(origin, length, first, end, done))
            return out
        # Cells inside the receptive field of the tile: the last one ends within it.
        end = (tile - size - offset) // stride + 1
        first = done - origin // stride
        out.append(AxisTile(origin, tile, first, end, done))
        done = origin // stride + end
        # The next tile starts where its first exact cell is the next one needed.
        origin = (done - skip) * stride


def plan_tiles(geo: Geometry, image_shape: Tuple[int, int], tile: TileLike,
               cells_of: Callable[[int, int], Tuple[int, int]]) -> TilePlan:
    """The tiles for an image of `image_shape` (H, W) pixels. `cells_of(h,
    w)` is the net's (rows, columns) of cells for an h x w input."""
    if geo is None or min(geo.stride) < 1:
        raise SurgeryError("a tiled forward needs the net's geometry (stride and receptive "
                           "field), and this net's is unknown: run it whole (tile=None)")
    th, tw = as_tile(tile)
    h, w = image_shape
    small_h, small_w = geo.min_input
    rows = plan_axis(h, th, geo, 0, lambda n: cells_of(n, max(small_w, 1))[0])
    columns = plan_axis(w, tw, geo, 1, lambda n: cells_of(max(small_h, 1), n)[1])
    map_shape = (rows[-1].first_cell + rows[-1].cells, columns[-1].first_cell + columns[-1].cells)
    return TilePlan(tuple(rows), tuple(columns), (h, w), map_shape, (th, tw))


# A tile is chosen so that one half as large again on each side (2.25 times
# its area) would fit the limit: the guard's estimate leaves out small
# buffers (pooling masks, the input's copies), and other nets in the process
# may hold memory too.
HEADROOM = 1.5


def tile_for_memory(geo: Geometry, image_shape: Tuple[int, int],
                    fits: Callable[[int, int], bool]) -> Optional[Tuple[int, int]]:
    """The largest square tile (halving from the image's longer side) whose
    forward, with HEADROOM, `fits(h, w)` the memory limit, counting the last
    tile's extra stride; None if not even the smallest tile fits."""
    least = max(smallest_tile(geo, 0), smallest_tile(geo, 1))
    side = max(image_shape)
    while True:
        side = max(side // 2, least)
        room = int(side * HEADROOM)
        if fits(min(room + geo.stride[0], image_shape[0]),
                min(room + geo.stride[1], image_shape[1])):
            return side, side
        if side == least:
            return None
