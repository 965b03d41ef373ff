"""The side-by-side picture of a dense map (matplotlib, off-screen): the
input beside one class's scores per cell, as in Caffe's net surgery
example. ``overlay.py`` draws the map over the input instead.

A DenseMap is handed in; nothing of the package is imported here."""

from __future__ import annotations

from typing import Optional

import numpy as np


def plot_dense_map(dense, cls: Optional[int] = None, figure=None):
    if figure is None:
        from matplotlib.figure import Figure
        figure = Figure(figsize=(10, 4.5), dpi=100)
    if cls is None:
        cls = int(np.unravel_index(np.nanargmax(dense.scores), dense.scores.shape)[0])
    left, right = figure.subplots(1, 2)
    image = dense.image
    left.imshow(image[:, :, 0] if image.shape[2] == 1 else np.clip(image, 0, 1),
                cmap="gray" if image.shape[2] == 1 else None)
    left.set_title(f"input {image.shape[0]}x{image.shape[1]} (HxW)")
    shown = right.imshow(dense.scores[cls], vmin=0, vmax=max(1e-6, float(dense.scores.max())))
    right.set_title(f"{dense.label(cls)}: score per cell ({dense.shape[0]}x{dense.shape[1]})")
    figure.colorbar(shown, ax=right, fraction=0.046)
    for axes in (left, right):
        axes.set_xticks([])
        axes.set_yticks([])
    return figure
