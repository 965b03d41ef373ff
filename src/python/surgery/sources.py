"""Images read one region at a time, for tiled forwards of images that do
not fit in memory.

- arrays, including memory-mapped ones, are sliced;
- ``.npy`` files are memory-mapped (numpy), so only the rows a region
  touches are paged in;
- TIFF (striped, tiled or pyramidal; full resolution is read) goes through
  tifffile's zarr store, which decodes only the strips or tiles a region
  touches;
- any other format is decoded whole by ``load_image``, as for a
  whole-image forward.

A region comes back as the file holds it (H x W or H x W x C, its own
dtype); ``preprocess`` then applies the one scaling and channel rule to it,
so a tile's numbers are those of the same pixels in a whole-image forward.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, Tuple

import numpy as np

from . import _core
from .errors import FileError, ShapeError
from .memory_budget import array_bytes, check_memory
from .preprocess import ImageLike, load_image, open_regular_file

LAZY_SUFFIXES = (".npy", ".tif", ".tiff")


class ImageSource:
    """An image whose regions are read on demand. ``array`` is the lazy
    array itself (numpy, memory-mapped numpy or zarr), H x W (x C)."""

    def __init__(self, name: str, array: Any, planar: bool = False) -> None:
        self.name = name
        self.array = array
        self._planar = planar  # TIFF samples stored as planes: C x H x W
        shape = tuple(array.shape)
        if planar:
            shape = shape[1:] + shape[:1]
        if len(shape) not in (2, 3) or min(shape) < 1:
            raise ShapeError(f"{name}: an image must be H x W or H x W x C, not shape {shape}")
        self.shape: Tuple[int, ...] = shape

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def bands(self) -> int:
        return self.shape[2] if len(self.shape) == 3 else 1

    def check_region(self, height: int, width: int) -> None:
        """Refuse a region of height x width pixels that, read as stored,
        would not fit the memory limit: the source may declare any size."""
        check_memory(array_bytes((height, width, self.bands), self.array.dtype.itemsize),
                     f"reading {height}x{width} pixels of {self.name}",
                     "give smaller tiles (tile=, --tile)")

    def read(self, rows: slice, columns: slice) -> np.ndarray:
        """The pixels of a region, as stored."""
        self.check_region(len(range(*rows.indices(self.height))),
                          len(range(*columns.indices(self.width))))
        try:
            if self._planar:
                return np.moveaxis(np.asarray(self.array[:, rows, columns]), 0, -1)
            return np.asarray(self.array[rows, columns])
        except (OSError, ValueError, RuntimeError, KeyError) as error:
            raise FileError(f"cannot read rows {rows.start}..{rows.stop}, columns "
                            f"{columns.start}..{columns.stop} of {self.name}: {error}") from error


def is_lazy_file(image: ImageLike) -> bool:
    """A path whose regions can be read without decoding the whole file."""
    return isinstance(image, (str, os.PathLike)) and \
        os.fspath(image).lower().endswith(LAZY_SUFFIXES)


def open_source(image: ImageLike, channels: int) -> ImageSource:
    """`image` (a path or an array) as a source of regions."""
    if not isinstance(image, (str, os.PathLike)):
        return ImageSource("the image", np.asarray(image))
    name = os.fspath(image)
    lower = name.lower()
    if lower.endswith(".npy"):
        return _npy(name)
    if lower.endswith((".tif", ".tiff")):
        return _tiff(name)
    return ImageSource(repr(name), load_image(name, color=channels != 1))


def _npy(name: str) -> ImageSource:
    open_regular_file(name).close()  # a FIFO or device is refused before numpy opens it
    try:
        array = np.load(name, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise FileError(f"cannot read image {name!r} (a .npy array): {error}") from error
    return ImageSource(repr(name), array)


def _tiff(name: str) -> ImageSource:
    """The first series' full-resolution level, through tifffile's zarr store."""
    try:
        import tifffile
        import zarr
    except ImportError as error:
        raise FileError(f"reading {name!r} a region at a time needs tifffile and zarr: pip "
                        f"install 'caffe-surgery[tiles]' ({error})") from error
    open_regular_file(name).close()
    try:
        with tifffile.TiffFile(name) as tif:
            series = tif.series[0]
            axes = series.levels[0].axes
        store = tifffile.imread(name, aszarr=True, series=0, level=0)
    except Exception as error:  # tifffile raises many kinds for a malformed file
        raise FileError(f"cannot read image {name!r} (TIFF): {error}") from error
    try:
        array = zarr.open_array(store, mode="r")
    except Exception as error:
        store.close()
        raise FileError(f"cannot read image {name!r} (TIFF): {error}") from error
    # The store holds the file open for as long as the array (which a
    # DenseMap keeps as its image) lives.
    weakref.finalize(array, store.close)
    if axes not in ("YX", "YXS", "SYX"):
        raise ShapeError(f"image {name!r} has axes {axes!r}; a tiled forward reads one 2-D "
                         "image (YX, YXS or SYX): save one plane per file")
    # A region read decodes whole chunks (strips or tiles): a file stored as
    # one huge strip cannot be read a region at a time within the limit.
    chunk_bytes = int(np.prod(array.chunks)) * array.dtype.itemsize
    if chunk_bytes > _core.memory_limit() // 4:
        raise ShapeError(f"image {name!r} is stored in chunks (strips or tiles) of "
                         f"{chunk_bytes / 2**20:.0f} MiB, too large to read a region at a time "
                         "within the memory limit: save it as a tiled TIFF "
                         "(e.g. tifffile.imwrite(..., tile=(256, 256)))")
    return ImageSource(repr(name), array, planar=axes == "SYX")
