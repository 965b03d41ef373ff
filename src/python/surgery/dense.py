"""Dense inference: one forward over a large image gives a map of answers."""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .convert import Geometry, geometry
from .errors import ShapeError, SurgeryError
from .net import Net
from .preprocess import ImageLike, MeanLike, preprocess


class DenseMap:
    """The result of ``dense_forward`` on one image.

    ``scores`` is C x H' x W' (the net's output, e.g. class probabilities per
    cell); cell (i, j) stands for the window ``boxes[i, j]`` of the input.
    """

    def __init__(self, net: Net, image: np.ndarray, scores: np.ndarray,
                 geo: Optional[Geometry], kept: Dict[str, np.ndarray],
                 labels: Optional[Sequence[str]]) -> None:
        self._net = net
        self._forward = net.forward_count
        self.image = image
        self.scores = scores
        self.geometry = geo
        self.labels = list(labels) if labels is not None else None
        self._kept = kept

    @property
    def shape(self) -> Tuple[int, int]:
        return self.scores.shape[1], self.scores.shape[2]

    @property
    def argmax(self) -> np.ndarray:
        """H' x W': the best class of each cell."""
        return self.scores.argmax(axis=0)

    def top(self, k: int = 5) -> Tuple[np.ndarray, np.ndarray]:
        """(classes, scores), each k x H' x W', best first, per cell."""
        k = min(k, self.scores.shape[0])
        order = np.argsort(-self.scores, axis=0, kind="stable")[:k]
        return order, np.take_along_axis(self.scores, order, axis=0)

    @property
    def boxes(self) -> np.ndarray:
        """H' x W' x 4: (x0, y0, x1, y1) of each cell's window; x1, y1 exclusive."""
        if self.geometry is None:
            raise SurgeryError("the net's geometry is unknown, so cells have no boxes")
        h, w = self.shape
        out = np.empty((h, w, 4), dtype=np.int64)
        for i in range(h):
            for j in range(w):
                out[i, j] = self.geometry.window_of(i, j)
        return out

    def features(self, name: str) -> np.ndarray:
        """Blob `name` from this forward (e.g. 'fc6-conv'), N x C x H x W.

        Blobs named in ``dense_forward(blobs=...)`` were kept; any other is a
        view of the net's memory, valid until the net runs again.
        """
        if name in self._kept:
            return self._kept[name]
        if self._net.forward_count != self._forward:
            raise SurgeryError(f"the net has run again since this map was made; pass "
                               f"blobs=({name!r},) to dense_forward to keep '{name}'")
        return _blob_view(self._net, name)

    def label(self, index: int) -> str:
        return self.labels[index] if self.labels else str(index)

    def plot(self, cls: Optional[int] = None, figure=None):
        """The input beside the confidence map of class `cls` (default: the
        class with the highest score anywhere), as in Caffe's net surgery example."""
        from .plot import plot_dense_map
        return plot_dense_map(self, cls, figure)

    def save_png(self, path, cls: Optional[int] = None) -> None:
        from .plot import save_png
        save_png(self, os.fspath(path), cls)

    def __repr__(self) -> str:
        return f"<DenseMap {self.shape[0]}x{self.shape[1]} cells, {self.scores.shape[0]} scores>"


def dense_forward(net: Net, image: Union[ImageLike, Sequence[ImageLike]], *,
                  mean: MeanLike = None, channel_swap: Optional[Sequence[int]] = None,
                  raw_scale: Optional[float] = None, input_scale: Optional[float] = None,
                  blobs: Sequence[str] = (), size: Optional[Tuple[int, int]] = None,
                  output: Optional[str] = None,
                  labels: Optional[Sequence[str]] = None) -> Union[DenseMap, List[DenseMap]]:
    """Run a fully convolutional net over a whole image.

    `image` is a path or an H x W (x C) array, or a list of them (any sizes:
    one DenseMap each). Preprocessing is pycaffe's Transformer; `size`
    resizes first as the Transformer does when the net's input is fixed.
    The net is reshaped to the image. `blobs` names blobs to keep copies of.
    """
    if isinstance(image, (list, tuple)):
        return [dense_forward(net, one, mean=mean, channel_swap=channel_swap,
                              raw_scale=raw_scale, input_scale=input_scale, blobs=blobs,
                              size=size, output=output, labels=labels) for one in image]
    if len(net.inputs) != 1:
        raise SurgeryError(f"dense_forward needs a net with one input, not {net.inputs}")
    name = net.inputs[0]
    declared = declared_shape(net, name)
    if len(declared) != 4:
        raise ShapeError(f"input {name!r} is {declared}, not N x C x H x W")
    window = tuple(declared[2:])
    if size is None and not isinstance(image, (str, os.PathLike)):
        # Shape the net before preprocessing: an image too large for the net
        # (or the memory limit) is refused before any copy is made of it.
        shape = np.shape(image)
        if len(shape) in (2, 3) and min(shape[:2]) >= min(window):
            net.reshape(**{name: (1, declared[1], shape[0], shape[1])})
    img, x = preprocess(image, declared[1], mean=mean, channel_swap=channel_swap,
                        raw_scale=raw_scale, input_scale=input_scale, size=size)
    if x.shape[1] < window[0] or x.shape[2] < window[1]:
        raise ShapeError(f"the image is {x.shape[1]}x{x.shape[2]} pixels; this net needs at "
                         f"least {window[0]}x{window[1]} (its window)")
    if output is None and not net.outputs:
        raise SurgeryError("the net has no output blob to map")
    output = output or net.outputs[0]
    outputs = net.forward(**{name: x[np.newaxis]})
    if output not in outputs:
        raise SurgeryError(f"{output!r} is not an output of the net: {sorted(outputs)}")
    scores = outputs[output][0]
    if scores.ndim != 3:
        raise ShapeError(f"output {output!r} is {scores.shape}, not a map; is the net "
                         "fully convolutional? (surgery.fully_convolutionalize)")
    # Only the blobs asked for are read (in GPU mode, copied to the host).
    kept = {b: _blob_copy(net, b) for b in blobs}
    return DenseMap(net, img, scores, geometry(net, output), kept, labels)


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


def declared_shape(net: Net, name: str) -> List[int]:
    from . import _core
    return list(_core.declared_input_shapes(net)[name])
