"""Dense maps as text, for the command line."""

from __future__ import annotations

import os
from typing import List

import numpy as np

from .errors import FileError


def load_labels(path) -> List[str]:
    """Class names, one per line; the name is the part before the first comma."""
    try:
        with open(os.fspath(path), encoding="utf-8") as f:
            return [line.strip().split(",")[0] for line in f if line.strip()]
    except OSError as error:
        raise FileError(f"cannot read labels {os.fspath(path)!r}: {error}") from error


def format_dense(name, dense, top: int = 3) -> str:
    """The argmax grid (class indices) and the best classes with their best cell."""
    h, w = dense.shape
    lines = [f"{name}: {dense.image.shape[1]}x{dense.image.shape[0]} -> {h}x{w} map"]
    width = len(str(dense.scores.shape[0] - 1))
    lines.append("best class per cell:")
    lines += ["  " + " ".join(f"{c:>{width}}" for c in row) for row in dense.argmax]
    best = dense.scores.reshape(dense.scores.shape[0], -1).max(axis=1)
    boxes = dense.boxes if dense.geometry else None
    lines.append(f"top {top} classes (best cell, its window x0,y0-x1,y1):")
    for cls in np.argsort(-best, kind="stable")[:top]:
        i, j = np.unravel_index(dense.scores[cls].argmax(), (h, w))
        where = ""
        if boxes is not None:
            x0, y0, x1, y1 = boxes[i, j]
            where = f" at cell ({i},{j}) {x0},{y0}-{x1},{y1}"
        lines.append(f"  {dense.label(int(cls))} [{cls}] {best[cls]:.4f}{where}")
    return "\n".join(lines)
