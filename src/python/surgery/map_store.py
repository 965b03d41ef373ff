"""A dense map written to disk a region at a time: Zarr (a chunked array
folder, the geometry in its attributes) or ``.npy`` (the geometry in a
JSON file beside it, ``<name>.npy.json``).

Whole or not at all: everything is written under a temporary name in the
same folder and renamed into place only when the last region is in, so a
crash leaves either no map or the previous one, never part of one. A
``.npy`` map is written with positioned writes (``os.pwrite``) rather than
a writable memory map, so the pages written do not count in the process's
resident memory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any, Dict, Tuple

import numpy as np

from .atomic_files import (RECORD_BYTES, folder_target, map_npy, output_target, publish,
                           publish_folder, read_json_object, write_text)
from .errors import FileError

# Written in every map's metadata, so a reader knows what it holds.
FORMAT = "caffe-surgery dense map 1"
SUFFIXES = (".zarr", ".npy")
# Beside a .npy map: its geometry and the rest of its metadata, as JSON.
GEOMETRY = ".json"
# A Zarr chunk holds every channel of a square of cells. Each tile's write
# decodes, updates and re-encodes the chunks it touches, so a chunk is kept
# near this size: 256x256 cells of CaffeNet's 1000 classes would be 256 MiB
# (a map's worth of memory per write, and as much re-encoded per tile).
CHUNK_BYTES = 4 * 2**20


def check_path(path: str, overwrite: bool) -> str:
    """Where a map at `path` is written (the file or folder a symbolic link
    names), checked: a known suffix, an existing folder, nothing there that
    is not a map's kind of file (a FIFO, a device), and no map there unless
    `overwrite`."""
    path = os.fspath(path).rstrip("/")
    if not path.lower().endswith(SUFFIXES):
        raise FileError(f"cannot write a map to {path!r}: name a .zarr folder or a .npy file")
    if path.lower().endswith(".zarr"):
        target = folder_target(path, "map")
    else:
        output_target(path + GEOMETRY, "map geometry")
        target = output_target(path, "map")
    if os.path.lexists(path) and not overwrite:
        raise FileError(f"map {path!r} exists; pass overwrite=True (--overwrite) to replace it")
    return target


def chunk_side(channels: int) -> int:
    """Cells a side of a Zarr chunk of `channels` float32 channels: the
    largest power of two from 16 to 256 within CHUNK_BYTES."""
    side = 256
    while side > 16 and 4 * channels * side * side > CHUNK_BYTES:
        side //= 2
    return side


class MapWriter:
    """Writes a C x H x W float32 map region by region; ``commit`` puts it
    in place, ``discard`` (or leaving the ``with`` block by an exception)
    leaves no trace."""

    def __init__(self, path: str, shape: Tuple[int, int, int], meta: Dict[str, Any],
                 overwrite: bool = False) -> None:
        target = check_path(path, overwrite)
        # The name given, not the target: its geometry goes beside it, where
        # load_map looks; the temporaries go beside the target, to be renamed.
        self.path = os.fspath(path).rstrip("/")
        self.shape = tuple(int(s) for s in shape)
        self.meta = {"format": FORMAT, **meta}
        folder = os.path.dirname(os.path.abspath(target))
        stem = os.path.basename(target)
        self._zarr = self.path.lower().endswith(".zarr")
        if self._zarr:
            import zarr
            self._tmp = tempfile.mkdtemp(dir=folder, prefix=f".{stem}.")
            side = chunk_side(self.shape[0])
            self._array = zarr.open_array(self._tmp, mode="w", shape=self.shape,
                                          chunks=(self.shape[0], side, side), dtype="f4",
                                          fill_value=np.nan)
            self._array.attrs.update(self.meta)
        else:
            fd, self._tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.")
            self._file = os.fdopen(fd, "r+b")
            np.lib.format.write_array_header_1_0(
                self._file, {"descr": "<f4", "fortran_order": False, "shape": self.shape})
            self._data_offset = self._file.tell()
            self._file.truncate(self._data_offset + 4 * int(np.prod(self.shape)))

    def write(self, rows: slice, columns: slice, values: np.ndarray) -> None:
        """Cells [rows, columns] of every channel."""
        values = np.ascontiguousarray(values, dtype="<f4")
        if self._zarr:
            self._array[:, rows, columns] = values
            return
        channels, height, width = self.shape
        fd = self._file.fileno()

        def put(data: np.ndarray, c: int, r: int) -> None:
            at = self._data_offset + 4 * ((c * height + r) * width + columns.start)
            view = memoryview(np.ascontiguousarray(data)).cast("B")
            while view:  # pwrite may write less than asked
                written = os.pwrite(fd, view, at)
                view, at = view[written:], at + written

        if values.shape[2] == width:
            # Whole rows: each channel's region is one run of bytes in the file.
            for c in range(channels):
                put(values[c], c, rows.start)
            return
        for c in range(channels):
            for r in range(values.shape[1]):
                put(values[c, r], c, rows.start + r)

    def commit(self) -> None:
        if self._zarr:
            publish_folder(self._tmp, self.path, "map")
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        write_text(self.path + GEOMETRY, json.dumps(self.meta, indent=1) + "\n",
                   "map geometry")
        publish(self._tmp, self.path, "map")

    def discard(self) -> None:
        if self._zarr:
            shutil.rmtree(self._tmp, ignore_errors=True)
        else:
            self._file.close()
            os.unlink(self._tmp)

    def __enter__(self) -> "MapWriter":
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is not None:
            self.discard()


def load_map(path) -> Tuple[Any, Dict[str, Any]]:
    """(scores, metadata) of a map written by a MapWriter; the scores are
    read lazily (a read-only memory map, or a zarr array). A .npy map and its
    geometry are read as regular files only, their headers checked first."""
    path = os.fspath(path).rstrip("/")
    if path.lower().endswith(".zarr"):
        try:
            import zarr
            array = zarr.open_array(path, mode="r")
            meta = dict(array.attrs)
        except (OSError, ValueError, KeyError) as error:
            raise FileError(f"cannot read map {path!r}: {error}") from error
    else:
        array = map_npy(path, "map")
        meta = read_json_object(path + GEOMETRY, "map geometry", RECORD_BYTES)
    if meta.get("format") != FORMAT:
        raise FileError(f"{path!r} is not a caffe-surgery dense map")
    return array, meta
