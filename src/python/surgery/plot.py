"""The side-by-side picture of a dense map (matplotlib, off-screen): the
input beside one class's scores per cell, as in Caffe's net surgery
example. ``overlay.py`` draws the map over the input instead.

A DenseMap is handed in; nothing of the package is imported here."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np


def shown_class(dense, detections: Sequence = ()) -> int:
    """The class a picture shows by default: that of the best detection, so
    the heat and the boxes speak of one class; without detections, the
    image's top class (the best mean score over the cells), not the class
    of one stray cell."""
    if detections:
        return int(detections[0].cls)
    return int(np.nanargmax(np.nanmean(np.asarray(dense.scores), axis=(1, 2))))


def colour_range(values: np.ndarray) -> Tuple[float, float]:
    """(low, high) of the colour scale of one class's map: from 0 (or its
    lowest score, if negative) to its highest score, so that a class that
    peaks at 0.01 still shows where it peaks. NaN and Inf are left out."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low = min(0.0, float(finite.min()))
    return low, max(float(finite.max()), low + 1e-6)


def colour_legend(low: float, high: float) -> str:
    """Said beside every colour bar: the scale is the map's own, not 0..1."""
    return f"colours {low:.3g} to {high:.3g}: this map's range"


def plot_dense_map(dense, cls: Optional[int] = None, figure=None):
    if figure is None:
        from matplotlib.figure import Figure
        figure = Figure(figsize=(10, 4.5), dpi=100)
    if cls is None:
        cls = shown_class(dense)
    left, right = figure.subplots(1, 2)
    image = dense.image
    left.imshow(image[:, :, 0] if image.shape[2] == 1 else np.clip(image, 0, 1),
                cmap="gray" if image.shape[2] == 1 else None)
    left.set_title(f"input {image.shape[0]}x{image.shape[1]} (HxW)")
    values = np.asarray(dense.scores[cls])
    low, high = colour_range(values)
    shown = right.imshow(values, vmin=low, vmax=high)
    right.set_title(f"{dense.label(cls)}: score per cell ({dense.shape[0]}x{dense.shape[1]})")
    figure.colorbar(shown, ax=right, fraction=0.046).set_label(colour_legend(low, high),
                                                                fontsize=8)
    for axes in (left, right):
        axes.set_xticks([])
        axes.set_yticks([])
    return figure
