"""Pictures of dense maps (matplotlib, off-screen, imported only when drawing).

A DenseMap is handed in; nothing of the package is imported here."""

from __future__ import annotations

from typing import Optional

import numpy as np


def plot_dense_map(dense, cls: Optional[int] = None, figure=None):
    import matplotlib
    if figure is None:
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        figure = plt.figure(figsize=(10, 4.5))
    if cls is None:
        cls = int(np.unravel_index(dense.scores.argmax(), dense.scores.shape)[0])
    left, right = figure.subplots(1, 2)
    image = dense.image
    left.imshow(image[:, :, 0] if image.shape[2] == 1 else np.clip(image, 0, 1),
                cmap="gray" if image.shape[2] == 1 else None)
    left.set_title(f"input {image.shape[1]}x{image.shape[0]}")
    shown = right.imshow(dense.scores[cls], vmin=0, vmax=max(1e-6, float(dense.scores.max())))
    right.set_title(f"{dense.label(cls)}: score per cell ({dense.shape[0]}x{dense.shape[1]})")
    figure.colorbar(shown, ax=right, fraction=0.046)
    for axes in (left, right):
        axes.set_xticks([])
        axes.set_yticks([])
    return figure


def save_png(dense, path: str, cls: Optional[int] = None) -> None:
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    figure = plot_dense_map(dense, cls)
    figure.savefig(path, format="png", dpi=100)  # 1000 x 450 pixels
    plt.close(figure)
