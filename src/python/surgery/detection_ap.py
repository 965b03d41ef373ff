"""Detection average precision, as PASCAL VOC scores it: per class, the
detections of every image ranked by score, each a true positive when it
overlaps a box of its class not yet matched by IoU >= `iou`, the area
under the precision/recall curve (every point, precision made monotone);
the mean over the classes that have boxes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .detections import Detection, iou_matrix

Truth = Sequence[Tuple[float, float, float, float, int]]  # x0, y0, x1, y1, class


@dataclass(frozen=True)
class APResult:
    ap: float                  # mean over the classes with boxes
    per_class: Dict[int, float]
    true: int                  # detections that found a box
    false: int                 # detections that did not (duplicates included)
    boxes: int                 # boxes to find


def _class_ap(scored: List[Tuple[float, bool]], boxes: int) -> float:
    if boxes == 0:
        return float("nan")
    scored.sort(key=lambda s: -s[0])
    hits = np.array([hit for _, hit in scored], bool)
    tp, fp = np.cumsum(hits), np.cumsum(~hits)
    recall = np.concatenate([[0.0], tp / boxes, [1.0]]) if len(hits) else np.array([0.0, 1.0])
    precision = (np.concatenate([[0.0], tp / np.maximum(tp + fp, 1), [0.0]]) if len(hits)
                 else np.array([0.0, 0.0]))
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def match(found: Sequence[Detection], boxes: Truth, iou: float = 0.5
          ) -> Tuple[List[Tuple[Detection, bool]], np.ndarray]:
    """One image's detections, best score first, each with whether it finds
    a box of its class not yet found (IoU >= `iou`); and, per box, whether
    one found it."""
    table = np.asarray(boxes, float).reshape(-1, 5)
    matched = np.zeros(len(table), bool)
    ranked = []
    for det in sorted(found, key=lambda d: -d.score):
        same = np.nonzero((table[:, 4] == det.cls) & ~matched)[0]
        hit = False
        if len(same):
            overlap = iou_matrix(np.asarray([det.box], float), table[same, :4])[0]
            best = int(overlap.argmax())
            if overlap[best] >= iou:
                matched[same[best]] = hit = True
        ranked.append((det, hit))
    return ranked, matched


def average_precision(detections: Sequence[Sequence[Detection]], truth: Sequence[Truth],
                      iou: float = 0.5) -> APResult:
    """AP of `detections` (per image) against `truth` (per image: rows of
    x0, y0, x1, y1, class)."""
    scored: Dict[int, List[Tuple[float, bool]]] = {}
    counts: Dict[int, int] = {}
    for found, boxes in zip(detections, truth):
        for cls in np.asarray(boxes, float).reshape(-1, 5)[:, 4].astype(int):
            counts[int(cls)] = counts.get(int(cls), 0) + 1
        for det, hit in match(found, boxes, iou)[0]:
            scored.setdefault(det.cls, []).append((det.score, hit))
    per_class = {cls: _class_ap(scored.get(cls, []), n) for cls, n in counts.items()}
    hits = sum(hit for values in scored.values() for _, hit in values)
    total = sum(len(values) for values in scored.values())
    mean = float(np.mean(list(per_class.values()))) if per_class else float("nan")
    return APResult(mean, per_class, hits, total - hits, sum(counts.values()))
