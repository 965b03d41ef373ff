"""Detections from a dense map: cells that are confident about one class,
as boxes, with duplicates from neighbouring cells removed by non-maximum
suppression."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One object found: class index `cls` (named `label`) with `score`,
    in `box` (x0, y0, x1, y1; x1, y1 exclusive), clipped to the image,
    the window of map cell `cell` (row, column)."""
    box: Tuple[int, int, int, int]
    cls: int
    label: str
    score: float
    cell: Tuple[int, int]

    def record(self) -> dict:
        """As a flat dict, for JSON and CSV."""
        x0, y0, x1, y1 = self.box
        return {"class": self.cls, "label": self.label, "score": self.score,
                "x0": x0, "y0": y0, "x1": x1, "y1": y1, "row": self.cell[0],
                "column": self.cell[1]}

    @classmethod
    def from_record(cls, record: dict) -> "Detection":
        """The detection a ``record()`` was made of."""
        return cls(box=(record["x0"], record["y0"], record["x1"], record["y1"]),
                   cls=record["class"], label=record["label"], score=record["score"],
                   cell=(record["row"], record["column"]))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of each row of `a` with each row of `b`
    (x0, y0, x1, y1): an len(a) x len(b) array."""
    a, b = a[:, np.newaxis], b[np.newaxis]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    union = ((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) +
             (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter)
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of `box` with each row of `boxes` (x0, y0, x1, y1)."""
    return iou_matrix(np.asarray(box)[np.newaxis], np.asarray(boxes))[0]


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> List[int]:
    """Greedy non-maximum suppression (as torchvision.ops.nms): indices of
    the boxes kept, best first; a box overlapping a kept one by more than
    `threshold` (IoU) is dropped."""
    order = list(np.argsort(-scores, kind="stable"))
    keep: List[int] = []
    while order:
        best = order.pop(0)
        keep.append(int(best))
        if order:
            rest = np.array(order)
            order = list(rest[iou(boxes[best].astype(float), boxes[rest].astype(float))
                              <= threshold])
    return keep


def _indices(value: Union[int, Sequence[int], None], classes: int, name: str) -> List[int]:
    if value is None:
        return []
    values = [value] if isinstance(value, (int, np.integer)) else list(value)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < classes:
            raise ValueError(f"{name} must be class indices in 0..{classes - 1}, not {v!r}")
    return [int(v) for v in values]


# How proposals are thinned: "class", among the boxes of one class (as
# torchvision's batched_nms and most detectors' post-processing do), so an
# object is never hidden by a neighbour of another class; "global", among
# all boxes whatever their class, so one object named differently by
# neighbouring cells (a shifted digit, a tabby and a tiger cat) gives one
# box, at the cost of losing a real object overlapped by a stronger one.
NMS_MODES = ("class", "global")


def check_nms_mode(mode: str) -> None:
    """Refuses a mode that is not one of NMS_MODES."""
    if mode not in NMS_MODES:
        raise ValueError(f"nms_mode must be one of {', '.join(NMS_MODES)}, not {mode!r}")


def suppress(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, threshold: float,
             mode: str = "class") -> List[int]:
    """`nms` of the proposals, within each class (`mode` "class") or across
    classes ("global"): indices kept, best first."""
    check_nms_mode(mode)
    if mode == "global":
        return nms(boxes, scores, threshold)
    kept: List[int] = []
    for cls in np.unique(classes):
        members = np.flatnonzero(classes == cls)
        kept += [int(members[k]) for k in nms(boxes[members], scores[members], threshold)]
    return sorted(kept, key=lambda k: (-scores[k], k))


def detect(scores: np.ndarray, boxes: np.ndarray, label: Callable[[int], str], *,
           threshold: float = 0.5, nms_iou: float = 0.3,
           classes: Optional[Sequence[int]] = None,
           background: Union[int, Sequence[int], None] = None,
           nms_mode: str = "class") -> List[Detection]:
    """Detections from `scores` (C x H' x W') and the cells' clipped `boxes`
    (H' x W' x 4). A cell proposes the class it scores best among the
    classes considered (`classes`, default all, less `background`), if that
    score is at least `threshold`; the proposals are then thinned by
    non-maximum suppression at `nms_iou` (``suppress``), within each class
    by default (`nms_mode` "class"), or across classes ("global"; see
    NMS_MODES). Returned best first."""
    if not 0.0 <= nms_iou <= 1.0:
        raise ValueError(f"nms_iou must be in 0..1, not {nms_iou!r}")
    check_nms_mode(nms_mode)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a number, not {threshold!r}")
    count = scores.shape[0]
    considered = _indices(classes, count, "classes") or list(range(count))
    dropped = set(_indices(background, count, "background"))
    considered = [c for c in considered if c not in dropped]
    if not considered:
        return []
    sub = scores[considered]
    best = sub.argmax(axis=0)
    best_score = np.take_along_axis(sub, best[np.newaxis], axis=0)[0]
    # A cell whose overall best class is background says "nothing here".
    if dropped:
        overall = scores.argmax(axis=0)
        quiet = np.isin(overall, list(dropped))
    else:
        quiet = np.zeros(best.shape, bool)
    rows, cols = np.nonzero((best_score >= threshold) & ~quiet)
    cell_boxes = boxes[rows, cols]
    cell_scores = best_score[rows, cols]
    cell_classes = np.asarray(considered)[best[rows, cols]]
    found = []
    for n in suppress(cell_boxes, cell_scores, cell_classes, nms_iou, nms_mode):
        cls = int(cell_classes[n])
        found.append(Detection(box=tuple(int(v) for v in cell_boxes[n]), cls=cls,
                               label=label(cls), score=float(cell_scores[n]),
                               cell=(int(rows[n]), int(cols[n]))))
    return found
