"""The ground truth of a dense map: the class each output cell should give,
from the boxes of the image and the window each cell looks at (geometry).

A cell is class c when its window overlaps a box of c by an IoU of at least
``pos_iou``, background when it overlaps every box by less than
``neg_iou``, and ignored (``IGNORE``: no loss, no gradient) in between,
where it is neither, and where its window lies mostly outside the image
(Caffe rounds pooled sizes up, so the last cells' windows can run past the
edge, over zeros the classifier never saw).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np

from .detections import iou_matrix
from .errors import ShapeError
from .geometry import Geometry, geometry
from .net import Net

# Caffe's SoftmaxWithLoss takes any int as its ignore_label; no class is negative.
IGNORE = -1
# A window with less than this share of its area inside the image is ignored.
MIN_INSIDE = 0.5


def map_shape_of(net: Net, image_shape: Tuple[int, int]) -> Tuple[int, int]:
    """(rows, columns) of `net`'s output for an image of `image_shape`
    (H, W), by Caffe's own shape arithmetic (the net is reshaped to it)."""
    data = net.inputs[0]
    declared = net.declared_input_shapes()[data]
    net.reshape(**{data: (1, declared[1], *image_shape)})
    return tuple(net.blobs[net.outputs[0]].shape[2:4])


def cell_windows(geo: Geometry, map_shape: Tuple[int, int]) -> np.ndarray:
    """(rows, columns, 4) windows (x0, y0, x1, y1) of every cell, unclipped."""
    rows, cols = np.meshgrid(np.arange(map_shape[0]), np.arange(map_shape[1]), indexing="ij")
    x0, y0 = cols * geo.stride[1], rows * geo.stride[0]
    return np.stack([x0, y0, x0 + geo.window[1], y0 + geo.window[0]], axis=-1).astype(float)


def _resolve(net_or_geometry: Union[Net, Geometry], image_shape: Tuple[int, int],
             map_shape: Optional[Tuple[int, int]]) -> Tuple[Geometry, Tuple[int, int]]:
    if isinstance(net_or_geometry, Geometry):
        if map_shape is None:
            raise ShapeError("with a Geometry, give map_shape (the net's output rows and "
                             "columns for this image), or pass the net itself")
        return net_or_geometry, tuple(map_shape)
    geo = geometry(net_or_geometry)
    if geo is None:
        raise ShapeError("the net's geometry is unknown: its cells have no windows to label")
    return geo, tuple(map_shape) if map_shape else map_shape_of(net_or_geometry, image_shape)


def window_labels(net_or_geometry: Union[Net, Geometry], image_shape: Tuple[int, int],
                  boxes: Union[np.ndarray, Sequence[Sequence[float]]], *, background: int,
                  pos_iou: float = 0.5, neg_iou: float = 0.3,
                  map_shape: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """The label of every output cell (int32, rows x columns) for an image
    of `image_shape` (H, W) holding `boxes`: rows of (x0, y0, x1, y1, class
    index), x1 and y1 exclusive. Class c where the cell's window has IoU >=
    `pos_iou` with a box of c (the best box where several do), `background`
    where every IoU is below `neg_iou`, ``IGNORE`` otherwise and where the
    window lies mostly outside the image. A Net gives its geometry and map
    shape (it is reshaped to the image); a Geometry needs `map_shape`."""
    if not 0 <= neg_iou <= pos_iou <= 1:
        raise ValueError(f"need 0 <= neg_iou <= pos_iou <= 1, not {neg_iou!r} and {pos_iou!r}")
    geo, shape = _resolve(net_or_geometry, image_shape, map_shape)
    table = np.asarray(boxes, dtype=float).reshape(-1, 5)
    windows = cell_windows(geo, shape).reshape(-1, 4)
    labels = np.full(len(windows), background, np.int32)
    if len(table):
        overlap = iou_matrix(windows, table[:, :4])
        best = overlap.argmax(axis=1)
        best_iou = overlap[np.arange(len(windows)), best]
        labels[best_iou >= neg_iou] = IGNORE
        positive = best_iou >= pos_iou
        labels[positive] = table[best[positive], 4].astype(np.int32)
    height, width = image_shape
    inside = ((np.minimum(windows[:, 2], width) - windows[:, 0]).clip(0) *
              (np.minimum(windows[:, 3], height) - windows[:, 1]).clip(0))
    area = (windows[:, 2] - windows[:, 0]) * (windows[:, 3] - windows[:, 1])
    labels[inside < MIN_INSIDE * area] = IGNORE
    return labels.reshape(shape)
