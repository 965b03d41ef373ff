"""Dense inference: one forward over a large image gives a map of answers."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from .detections import Detection, detect
from .errors import MemoryLimitError, NumericWarning, ShapeError, SurgeryError
from .geometry import Geometry, WindowLike, geometry
from .labels import check_labels
from .map_store import MapWriter, load_map
from .memory_budget import array_bytes, check_memory
from .net import Net, as_net
from .overlay import save_picture
from .pinned import staged_batch
from .plot import plot_dense_map
from .preprocess import (DECODE_BYTES_PER_VALUE, ImageLike, Preprocess, check_image_memory,
                         image_size, open_regular_file)
from .progress import progress_bar
from .rarefy import output_stride, rarefy
from .sources import is_lazy_file, open_source
from .tiled_forward import for_tiles, forward_tiles, output_cells, whole_fits
from .tiles import TileLike, TilePlan, as_tile, plan_tiles, tile_for_memory

# Spelled once, in the core: the hint for a net that still ends in a classifier.
UNCONVERTED_HINT = f"this net still has InnerProduct layers: {_core.UNCONVERTED_HINT}"


class DenseMap:
    """The result of ``dense_forward`` on one image.

    ``scores`` is C x H' x W' (the net's output, e.g. class probabilities per
    cell); cell (i, j) stands for the window ``boxes[i, j]`` of the input.
    ``finite`` is False when some score is NaN or infinite (NaN weights or
    mean; a NumericWarning said so): then argmax and top mean nothing.
    A tiled map (``tiles``: its TilePlan) holds as ``image`` the source
    array as stored (possibly memory-mapped or a zarr array), and, when
    written with ``out=``, as ``scores`` the map on disk, read lazily.
    """

    def __init__(self, net: Net, image: np.ndarray, scores: np.ndarray,
                 geo: Optional[Geometry], kept: Dict[str, np.ndarray],
                 labels: Optional[Sequence[str]], finite: Optional[bool] = None,
                 tiles: Optional[TilePlan] = None, batch_index: int = 0) -> None:
        self._net = net
        self._forward = net.forward_count
        # This image's place in the batch its forward ran (features views).
        self._batch_index = batch_index
        self.image = image
        self.scores = scores
        self.geometry = geo
        self.labels = list(labels) if labels is not None else None
        self.finite = bool(np.isfinite(scores).all()) if finite is None else finite
        self.tiles = tiles
        self._kept = kept

    @property
    def shape(self) -> Tuple[int, int]:
        return self.scores.shape[1], self.scores.shape[2]

    def _held_scores(self, what: str, per_value: int, per_cell: int = 0) -> np.ndarray:
        """The scores as an array in memory, for `what`, which makes
        `per_value` bytes for each score and `per_cell` for each cell; refused
        first where that, and the map itself when it is on disk (out=),
        read whole, would not fit the memory limit."""
        channels, height, width = self.scores.shape
        on_disk = 0 if isinstance(self.scores, np.ndarray) else 4
        need = ((on_disk + per_value) * channels + per_cell) * height * width
        check_memory(need, f"{what} of the {channels}x{height}x{width} map",
                     "read the map a region at a time (surgery.map_store.load_map)")
        return np.asarray(self.scores)

    @property
    def argmax(self) -> np.ndarray:
        """H' x W': the best class of each cell."""
        return self._held_scores("the argmax", 0, 8).argmax(axis=0)

    def top(self, k: int = 5) -> Tuple[np.ndarray, np.ndarray]:
        """(classes, scores), each k x H' x W', best first, per cell."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"top(k) needs a whole number k >= 1, not {k!r}")
        k = min(int(k), self.scores.shape[0])
        # The negated copy and argsort's int64 order, then k of each.
        scores = self._held_scores(f"the top {k}", 4 + 8, 12 * k)
        order = np.argsort(-scores, axis=0, kind="stable")[:k]
        return order, np.take_along_axis(scores, order, axis=0)

    @property
    def boxes(self) -> np.ndarray:
        """H' x W' x 4: (x0, y0, x1, y1) of each cell's window; x1, y1 exclusive.
        Not clipped: the last cells' windows may run past the image."""
        if self.geometry is None:
            raise SurgeryError("the net's geometry is unknown, so cells have no boxes "
                               "(pass window=(H, W) to dense_forward)")
        h, w = self.shape
        out = np.empty((h, w, 4), dtype=np.int64)
        for i in range(h):
            for j in range(w):
                out[i, j] = self.geometry.window_of(i, j)
        return out

    @property
    def clipped_boxes(self) -> np.ndarray:
        """``boxes`` clipped to the image: (x0, y0, x1, y1) within 0..W, 0..H."""
        out = self.boxes.copy()
        out[..., 0::2] = np.clip(out[..., 0::2], 0, self.image.shape[1])
        out[..., 1::2] = np.clip(out[..., 1::2], 0, self.image.shape[0])
        return out

    def detections(self, threshold: float = 0.5, nms_iou: float = 0.3,
                   classes: Optional[Sequence[int]] = None,
                   background: Union[int, Sequence[int], None] = None,
                   nms_mode: str = "class") -> List[Detection]:
        """Objects found: cells whose best class (among `classes`, not
        `background`) scores at least `threshold`, as boxes clipped to the
        image, after non-maximum suppression (of two boxes overlapping by
        more than `nms_iou`, intersection over union, the lower-scoring one
        goes) among the boxes of one class (`nms_mode` "class", the common
        default) or of all classes ("global"). Best first. See
        ``detections.detect``."""
        # detect's copy of the classes considered; the boxes (and their
        # clipped copy, int64) and the per-cell best class, score and flags.
        scores = self._held_scores("the detections", 4, 2 * 32 + 8 + 4 + 2)
        return detect(scores, self.clipped_boxes, self.label,
                      threshold=threshold, nms_iou=nms_iou, classes=classes,
                      background=background, nms_mode=nms_mode)

    def features(self, name: str) -> np.ndarray:
        """Blob `name` from this forward (e.g. 'fc6-conv'), 1 x C x H x W:
        this image's part of it when several images ran as one batch.

        Blobs named in ``dense_forward(blobs=...)`` were kept; any other is a
        view of the net's memory, valid until the net runs again.
        """
        if name in self._kept:
            return self._kept[name]
        if self.tiles is not None:
            raise SurgeryError(f"this map was made in {len(self.tiles)} tiles, one forward "
                               f"each: no blob {name!r} covers the image")
        if self._net.forward_count != self._forward:
            raise SurgeryError(f"the net has run again since this map was made; pass "
                               f"blobs=({name!r},) to dense_forward to keep '{name}'")
        return _blob_view(self._net, name)[self._batch_index:self._batch_index + 1]

    def label(self, index: int) -> str:
        return self.labels[index] if self.labels else str(index)

    def plot(self, cls: Optional[int] = None, figure=None):
        """The input beside the confidence map of class `cls` (default: the
        image's top class, plot.shown_class), as in Caffe's net surgery example."""
        return plot_dense_map(self, cls, figure)

    def save_picture(self, path, cls: Optional[int] = None,
                     detections: Optional[Sequence[Detection]] = None,
                     side_by_side: bool = False) -> None:
        """Write the map of class `cls` (default: the best detection's, else
        the image's top class) overlaid on the input (aligned to window
        centres, with a colour bar of the map's own range and the
        `detections`' boxes, their labels apart), or beside it; PNG or JPEG
        by the file's suffix (overlay.py)."""
        save_picture(self, os.fspath(path), cls, detections, side_by_side)

    def save_png(self, path, cls: Optional[int] = None) -> None:
        """Kept for older callers: ``save_picture`` of the side-by-side view."""
        self.save_picture(path, cls, side_by_side=True)

    def __repr__(self) -> str:
        return f"<DenseMap {self.shape[0]}x{self.shape[1]} cells, {self.scores.shape[0]} scores>"


@dataclass(frozen=True)
class _NetFacts:
    """What dense_forward needs to know about a net, read once per call."""
    input: str
    channels: int
    output: str
    geometry: Optional[Geometry]
    min_input: Tuple[int, int]


def _net_facts(net: Net, output: Optional[str], window: WindowLike = None) -> _NetFacts:
    inputs = net.inputs
    if len(inputs) != 1:
        raise SurgeryError(f"dense_forward needs a net with one input, not {inputs}")
    name = inputs[0]
    declared = net.declared_input_shapes()[name]
    if len(declared) != 4:
        raise ShapeError(f"input {name!r} is {list(declared)}, not N x C x H x W")
    if output is None:
        outputs = net.outputs
        if not outputs:
            raise SurgeryError("the net has no output blob to map")
        output = outputs[0]
    if output not in net.outputs:
        raise SurgeryError(f"{output!r} is not an output of the net: {net.outputs}")
    gates = _core.channel_gate_layers(net)
    if any(layer.type == "InnerProduct" and layer.name not in gates for layer in net.layers):
        raise ShapeError(f"{UNCONVERTED_HINT}: it takes only its "
                         f"{declared[2]}x{declared[3]} input and gives no map")
    geo = geometry(net, output, window)
    min_input = geo.min_input if geo is not None and min(geo.min_input) > 0 else (1, 1)
    return _NetFacts(input=name, channels=declared[1], output=output, geometry=geo,
                     min_input=min_input)


# Images of one size per forward unless told otherwise: enough for the
# fully connected layers' GEMMs (CaffeNet fc6: 16 images of 8x8 cells make
# 1024 columns, libcaffe's batched-GEMM bound) without holding many
# batches' activations.
DEFAULT_BATCH_SIZE = 16


def dense_forward(net: Net, image: Union[ImageLike, Sequence[ImageLike]], *,
                  preprocess: Optional[Preprocess] = None, blobs: Sequence[str] = (),
                  output: Optional[str] = None,
                  labels: Optional[Sequence[str]] = None, window: WindowLike = None,
                  batch_size: int = DEFAULT_BATCH_SIZE,
                  tile: Optional[TileLike] = None, out=None, overwrite: bool = False,
                  progress: bool = False,
                  stride: Optional[int] = None) -> Union[DenseMap, List[DenseMap]]:
    """Run a fully convolutional net (a surgery.Net or surgery.pycaffe.Net)
    over a whole image.

    `image` is a path or an H x W (x C) array, or a list of them (any sizes:
    one DenseMap each, in the list's order). `preprocess` (a
    ``surgery.Preprocess``; default: none but the [0, 1] scaling of an image
    file) is pycaffe's Transformer; its `size` resizes first as the
    Transformer does when the net's input is fixed. The net is reshaped to
    the image; an image smaller than the net's smallest input
    (``Geometry.min_input``, each side) raises ShapeError. Images of the
    same size run as one batch (N in the input blob), at most `batch_size`
    per forward: the large weights of
    fully-connected-turned-convolution layers are then read once per batch
    instead of once per image. A batch the memory limit refuses
    (``surgery.set_memory_limit``) runs as smaller ones; only a single
    image that does not fit raises MemoryLimitError. `blobs` names blobs to
    keep copies of (one name or several). `labels` (a list, or a file's
    path) must name every output channel. `window` (H, W) overrides the
    window the geometry's rules choose for each cell. Scores holding NaN or
    Inf give a NumericWarning (and ``DenseMap.finite`` False).

    Images too large to run whole: `tile` (pixels, one int or (H, W)) runs
    the image in overlapping tiles whose stitched map equals the whole
    forward on every cell (tiles.py says why the overlap is needed); with
    `tile` None an image is tiled only when its whole forward would exceed
    the memory limit. ``.npy`` and TIFF paths are read a tile at a time
    (sources.py). `out` (a ``.zarr`` folder or ``.npy`` file, one image)
    receives the map, whole or not at all, with its geometry beside it
    (map_store.py; `overwrite` replaces one there); the DenseMap's scores
    are then read from it lazily. `progress` shows a bar on stderr over the
    tiles of a tiled image, over the layers of an image (or batch) run whole,
    once it has taken ``progress.progress_delay()`` seconds (2).

    `stride`: the map's stride wanted, a divisor of the net's; the net is
    rarefied to it first, in place (``surgery.rarefy``), unless it is there.
    """
    net = as_net(net)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, not {batch_size!r}")
    if stride is not None and output_stride(net, output) != (stride, stride):
        rarefy(net, stride=stride)
    facts = _net_facts(net, output, window)
    if isinstance(blobs, str):
        blobs = (blobs,)
    if labels is not None:
        labels = check_labels(labels, _channels(net, facts.output))
    many = isinstance(image, (list, tuple))
    if many and out is not None:
        raise SurgeryError("out= names the map of one image; run the images one at a time "
                           "(or surgery.dask_batch.dense_images for a folder)")
    if preprocess is None:
        preprocess = Preprocess()
    elif not isinstance(preprocess, Preprocess):
        raise TypeError(f"preprocess must be a surgery.Preprocess, not {preprocess!r}")
    images = list(image) if many else [image]
    maps: List[Optional[DenseMap]] = [None] * len(images)
    # Images run whole wait, grouped by their preprocessed size, until a
    # batch is full; so at most batch_size images per size are held
    # preprocessed at once. A tiled image runs at once, a tile at a time.
    waiting: Dict[Tuple[int, ...], List[_Prepared]] = {}
    for index, one in enumerate(images):
        tiling = _tiling(net, facts, one, tile=tile, out=out, size=preprocess.size)
        if tiling is not None:
            maps[index] = _tiled_image(net, facts, tiling, one, prep=preprocess, blobs=blobs,
                                       labels=labels, out=out, overwrite=overwrite,
                                       progress=progress)
            continue
        prepared = _prepare(net, facts, index, one, preprocess)
        group = waiting.setdefault(prepared.x.shape, [])
        group.append(prepared)
        if len(group) == batch_size:
            _run_batches(net, facts, waiting.pop(prepared.x.shape), blobs, labels, maps,
                         progress)
    for group in waiting.values():
        _run_batches(net, facts, group, blobs, labels, maps, progress)
    return maps if many else maps[0]

def _tiling(net: Net, facts: _NetFacts, image: ImageLike, *, tile: Optional[TileLike], out,
            size: Optional[Tuple[int, int]]) -> Optional[Tuple[int, int]]:
    """The tile size (H, W) to run `image` in, or None to run it whole (as
    before tiling existed): a tile asked for, else the whole image as one
    tile where it is read lazily or written out and fits, else the largest
    tile that fits the memory limit where the whole would not."""
    if size is not None:
        if tile is not None or out is not None:
            raise ShapeError("size= resizes the whole image first, which a tiled forward "
                             "never holds: resize beforehand, or drop tile= and out=")
        return None
    if tile is not None:
        return as_tile(tile)
    lazy = is_lazy_file(image)
    shape = _image_shape(image, facts.channels)
    if shape is None:
        return None  # unreadable or not an image: the whole-image path says why
    height, width = shape
    if height < facts.min_input[0] or width < facts.min_input[1]:
        return None  # too small for the net: the whole-image path says so
    fits = whole_fits(net, facts.input, facts.channels, height, width)
    if fits and not lazy and not isinstance(image, (str, os.PathLike)):
        try:
            check_image_memory(height, width, facts.channels)
        except ShapeError:
            fits = False
    if fits:
        return (height, width) if lazy or out is not None else None
    if facts.geometry is None:
        return None  # cannot tile: the whole-image path raises MemoryLimitError
    return tile_for_memory(facts.geometry, (height, width),
                           lambda h, w: whole_fits(net, facts.input, facts.channels, h, w))


def _image_shape(image: ImageLike, channels: int) -> Optional[Tuple[int, int]]:
    """(H, W) of an array or a file (from its header), or None if unknown."""
    if is_lazy_file(image):
        source = open_source(image, channels)
        return source.height, source.width
    if isinstance(image, (str, os.PathLike)):
        try:
            with open_regular_file(image) as file:
                height, width, bands = image_size(file, os.fspath(image))
        except SurgeryError:
            return None
        # Decoding must fit whole (only .npy and TIFF are read in tiles).
        check_image_memory(height, width, max(bands, 3), DECODE_BYTES_PER_VALUE,
                           repr(os.fspath(image)))
        return height, width
    shape = np.shape(image)
    return (int(shape[0]), int(shape[1])) if len(shape) in (2, 3) else None


def _tiled_image(net: Net, facts: _NetFacts, tile: Tuple[int, int], image: ImageLike, *,
                 prep: Preprocess, blobs: Sequence[str], labels: Optional[Sequence[str]], out,
                 overwrite: bool, progress: bool) -> DenseMap:
    if blobs:
        raise SurgeryError(f"blobs={tuple(blobs)} keeps a blob of one forward; a tiled "
                           "forward runs one per tile (pass tile=None for a whole forward)")
    prep = for_tiles(prep)
    source = open_source(image, facts.channels)
    plan = plan_tiles(facts.geometry, (source.height, source.width), tile,
                      lambda h, w: output_cells(net, facts.input, facts.output,
                                                facts.channels, h, w))
    shape = (_channels(net, facts.output),) + plan.map_shape
    run = dict(input=facts.input, output=facts.output, channels=facts.channels, prep=prep,
               progress=progress, label=source.name)
    if out is None:
        # Whether the tile was asked for or chosen: the map in memory is
        # refused before it is made, and before any tile runs.
        check_memory(array_bytes(shape, 4), f"the {'x'.join(map(str, shape))} map of "
                     f"{source.name} ({source.height}x{source.width} pixels)",
                     "write it to disk with out='map.zarr' (--out in the CLI)")
        scores = np.empty(shape, np.float32)
        finite = forward_tiles(net, plan, source, into=scores, **run)
    else:
        meta = map_metadata(facts, plan, labels, os.fspath(image)
                            if isinstance(image, (str, os.PathLike)) else "an array")
        with MapWriter(out, shape, meta, overwrite=overwrite) as writer:
            finite = forward_tiles(net, plan, source, into=writer, **run)
            writer.commit()
        scores, _ = load_map(out)
    dense = DenseMap(net, source.array, scores, facts.geometry, {}, labels, finite=finite,
                     tiles=plan)
    if not finite:
        warnings.warn(f"output {facts.output!r} holds NaN or infinite scores (are the weights "
                      "or the mean finite?): the map's argmax and top mean nothing",
                      NumericWarning, stacklevel=3)
    return dense


def map_metadata(facts: _NetFacts, plan: TilePlan, labels: Optional[Sequence[str]],
                 image: str) -> dict:
    """What a map on disk records beside its scores: where each cell looks."""
    geo = facts.geometry
    return {"image": image, "output": facts.output, "image_shape": list(plan.image_shape),
            "map_shape": list(plan.map_shape), "tile": list(plan.tile),
            "stride": list(geo.stride), "window": list(geo.window),
            "window_rule": geo.window_rule, "receptive_field": list(geo.receptive_field),
            "receptive_offset": list(geo.receptive_offset),
            "labels": list(labels) if labels is not None else None}


@dataclass
class _Prepared:
    """One image, preprocessed: `img` as loaded, `x` the net's C x H x W input."""
    index: int
    img: np.ndarray
    x: np.ndarray


def _prepare(net: Net, facts: _NetFacts, index: int, image: ImageLike,
             preprocess: Preprocess) -> _Prepared:
    smallest = facts.min_input
    if preprocess.size is None and not isinstance(image, (str, os.PathLike)):
        # Shape the net before preprocessing: an image too large for the net
        # (or the memory limit) is refused before any copy is made of it.
        shape = np.shape(image)
        if len(shape) in (2, 3) and shape[0] >= smallest[0] and shape[1] >= smallest[1]:
            net.reshape(**{facts.input: (1, facts.channels, shape[0], shape[1])})
    img, x = preprocess(image, facts.channels)
    if x.shape[1] < smallest[0] or x.shape[2] < smallest[1]:
        raise ShapeError(f"the image is {x.shape[1]}x{x.shape[2]} pixels (HxW); this net needs "
                         f"at least {smallest[0]}x{smallest[1]} (its smallest input, one cell)")
    return _Prepared(index, img, x)


def _run_batches(net: Net, facts: _NetFacts, group: List[_Prepared], blobs: Sequence[str],
                 labels: Optional[Sequence[str]], maps: List[Optional[DenseMap]],
                 progress: bool) -> None:
    """Forward `group` (images of one size) in batches as large as the memory
    limit allows, up to the whole group; each map goes to its image's place.
    `progress`: a bar over each forward's layers (a whole image can take
    seconds to minutes and has no tiles to count)."""
    batch = len(group)
    start = 0
    while start < len(group):
        chunk = group[start:start + batch]
        try:
            with staged_batch(net, [p.x for p in chunk]) as x, \
                    progress_bar(unit="layer", desc=f"{len(chunk)} image(s) of "
                                 f"{x.shape[2]}x{x.shape[3]}", enabled=progress) as bar:
                # Without a bar, no Python call between layers.
                outputs = (net.forward_stepped({facts.input: x}, bar.update) if progress
                           else net.forward(**{facts.input: x}))
        except MemoryLimitError:
            if batch == 1:
                raise
            batch = max(1, batch // 2)
            continue
        for offset, dense in enumerate(_maps_of(net, facts, chunk, outputs, blobs, labels)):
            maps[chunk[offset].index] = dense
        start += len(chunk)


def _maps_of(net: Net, facts: _NetFacts, chunk: List[_Prepared],
             outputs: Dict[str, np.ndarray], blobs: Sequence[str],
             labels: Optional[Sequence[str]]) -> List[DenseMap]:
    if facts.output not in outputs:
        raise SurgeryError(f"{facts.output!r} is not an output of the net: {sorted(outputs)}")
    scores = outputs[facts.output]
    if scores.ndim != 4:
        raise ShapeError(f"output {facts.output!r} is {scores.shape[1:]}, not a map; is the net "
                         "fully convolutional? (surgery.fully_convolutionalize)")
    # Only the blobs asked for are read (in GPU mode, copied to the host),
    # once per batch; each image keeps its own part.
    kept = {b: _blob_copy(net, b) for b in blobs}
    maps = []
    for offset, prepared in enumerate(chunk):
        own = {b: value[offset:offset + 1].copy() for b, value in kept.items()}
        dense = DenseMap(net, prepared.img, scores[offset], facts.geometry, own, labels,
                         batch_index=offset)
        if not dense.finite:
            warnings.warn(f"output {facts.output!r} holds NaN or infinite scores (are the "
                          "weights or the mean finite?): the map's argmax and top mean nothing",
                          NumericWarning, stacklevel=4)
        maps.append(dense)
    return maps


def _channels(net: Net, output: str) -> int:
    """Channels of `output` (classes), from its shape at the declared input."""
    return int(net.blobs[output].shape[1])


def _check_blob(net: Net, name: str) -> None:
    names = net._blob_names()
    if name not in names:
        raise SurgeryError(f"the net has no blob {name!r}; it has {names}")


def _blob_view(net: Net, name: str) -> np.ndarray:
    _check_blob(net, name)
    return net._blob(name)


def _blob_copy(net: Net, name: str) -> np.ndarray:
    """A copy, read from wherever the data is current (in GPU mode, the
    device) without marking the host side current."""
    _check_blob(net, name)
    return net._blob_copy(name)

