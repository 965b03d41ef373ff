"""Dense maps and detections as text, for the command line.

A DenseMap and its detections are handed in; nothing of the package is
imported here."""

from __future__ import annotations

from typing import Sequence


def format_dense(name, dense, detections: Sequence = (), grid: bool = True) -> str:
    """The argmax grid (class indices; if `grid`), the detections with their
    boxes, and the classes ranked by how many times they were detected."""
    h, w = dense.shape
    lines = [f"{name}: {dense.image.shape[0]}x{dense.image.shape[1]} (HxW) -> {h}x{w} map"]
    if grid:
        width = len(str(dense.scores.shape[0] - 1))
        lines.append("best class per cell:")
        lines += ["  " + " ".join(f"{c:>{width}}" for c in row) for row in dense.argmax]
    lines.append(f"{len(detections)} detection(s) (box x0,y0-x1,y1, clipped to the image):")
    for d in detections:
        x0, y0, x1, y1 = d.box
        lines.append(f"  {d.label} [{d.cls}] {d.score:.4f} at {x0},{y0}-{x1},{y1} "
                     f"(cell {d.cell[0]},{d.cell[1]})")
    lines += format_summary(detections)
    return "\n".join(lines)


def format_summary(detections: Sequence) -> list:
    """Classes ranked by what was detected: count, then best score."""
    counts = {}
    for d in detections:
        label, count, best = counts.get(d.cls, (d.label, 0, 0.0))
        counts[d.cls] = (label, count + 1, max(best, d.score))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1][1], -kv[1][2], kv[0]))
    if not ranked:
        return ["classes detected: none"]
    return ["classes detected (most first):"] + [
        f"  {label} [{cls}]: {count} (best {best:.4f})" for cls, (label, count, best) in ranked]
