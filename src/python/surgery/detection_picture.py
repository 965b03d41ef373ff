"""One image's detections by several nets side by side, as AP counts them
(a fine-tuning's before and after): a detection that finds a box of its
class is boxed in green, one that finds none (clutter, a duplicate, the
wrong class) in red, and a box that no detection found is dashed in yellow.
Each panel's title says what it shows; the image fills each panel at the
overlay's scale (overlay.layout)."""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from .detection_ap import Truth, match
from .detections import Detection
from .overlay import DPI, GAP_PX, TITLE_PX, check_picture_memory, check_picture_path, layout, \
    write_figure

FOUND, FALSE, MISSED = "#2ca02c", "#d62728", "#ffdd00"
CAPTION_PX = 24


def draw_detections(image: np.ndarray, panels: Sequence[Tuple[str, Sequence[Detection]]],
                    truth: Truth, iou: float = 0.5, figure=None):
    """A matplotlib Figure: `image` (H x W x C in [0, 1]) once per panel
    (title, detections), its detections coloured by `truth` (rows of x0, y0,
    x1, y1, class) at IoU `iou`."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    height, width = image.shape[:2]
    scale = layout(height, width)
    panel_w, panel_h = width * scale, height * scale
    w_px = len(panels) * (panel_w + GAP_PX) - GAP_PX
    h_px = panel_h + TITLE_PX + CAPTION_PX
    check_picture_memory(image, (w_px, h_px), len(panels))
    if figure is None:
        figure = Figure(figsize=(w_px / DPI, h_px / DPI), dpi=DPI)
    shown = image[:, :, 0] if image.shape[2] == 1 else image
    for k, (title, found) in enumerate(panels):
        axes = figure.add_axes((k * (panel_w + GAP_PX) / w_px, CAPTION_PX / h_px,
                                panel_w / w_px, panel_h / h_px))
        axes.set_axis_off()
        axes.imshow(np.clip(shown, 0, 1), cmap="gray", vmin=0, vmax=1,
                    extent=(0, width, height, 0), interpolation="nearest")
        ranked, matched = match(found, truth, iou)
        table = np.asarray(truth, float).reshape(-1, 5)
        for (x0, y0, x1, y1, _), hit in zip(table, matched):
            if not hit:
                axes.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False,
                                         edgecolor=MISSED, linestyle="--", linewidth=1.5))
        # The false ones first and thin: where they crowd, the found ones
        # stay visible on top.
        for det, hit in sorted(ranked, key=lambda pair: pair[1]):
            x0, y0, x1, y1 = det.box
            axes.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False,
                                     edgecolor=FOUND if hit else FALSE,
                                     linewidth=2.5 if hit else 1.0))
        axes.set_xlim(0, width)
        axes.set_ylim(height, 0)
        hits = sum(hit for _, hit in ranked)
        axes.set_title(f"{title}: {hits} found, {len(ranked) - hits} false, "
                       f"{len(table) - int(matched.sum())} missed", fontsize=9)
    figure.text(0.01, 0.5 * CAPTION_PX / h_px,
                f"green: finds a box of its class (IoU >= {iou:g}); red: finds none; "
                "dashed yellow: a box no detection found", fontsize=8, va="center", ha="left")
    return figure


def save_detections_picture(path: str, image: np.ndarray,
                            panels: Sequence[Tuple[str, Sequence[Detection]]], truth: Truth,
                            iou: float = 0.5) -> None:
    """``draw_detections`` to `path`, PNG or JPEG by its suffix, whole or not
    at all."""
    check_picture_path(path)
    write_figure(draw_detections(image, panels, truth, iou), path)
