"""A dense map drawn over its input (matplotlib, off-screen).

Cell (i, j)'s score is drawn as a stride-sized square centred on the centre
of the cell's window, and the squares are blended bilinearly: so the heat
covers the area the cells' window centres span (half a window in from the
image's edges) and lies over what each cell looked at, not at its window's
corner. Detection boxes and their labels are drawn on top; a colour bar
gives the scale.

Layout, so a picture can be read back in image coordinates: the input fills
the top-left ``scale * W`` x ``scale * H`` pixels of the file (``layout``);
a caption runs below it and the colour bar to its right.

``draw_strides`` puts maps of one image at different strides (before and
after ``rarefy``) side by side in the same way.

A DenseMap is handed in; nothing of the package above memory_budget is
imported.
"""

from __future__ import annotations

import io
import os
from typing import Optional, Sequence, Tuple

import numpy as np

from .atomic_files import output_target, write_bytes
from .errors import FileError, ShapeError
from .memory_budget import array_bytes, check_memory
from .plot import colour_legend, colour_range, plot_dense_map, shown_class

FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}
BAR_PX = 90       # right of the image: the colour bar and its ticks
CAPTION_PX = 30   # below the image: what is shown
GAP_PX = 16       # between maps drawn side by side (draw_strides)
TITLE_PX = 24     # above them: each map's stride and cells
DPI = 100
HEAT_ALPHA = 0.5
COLORMAP = "jet"


# What a picture takes: for each value of the input drawn, its clipped
# float copy and matplotlib's float64 normalised and RGBA resampled ones;
# for each pixel of the canvas, Agg's RGBA buffer and the encoder's copy.
PICTURE_BYTES_PER_VALUE = 32
CANVAS_BYTES_PER_PIXEL = 8
SIDE_BY_SIDE_PX = (1000, 450)  # the side-by-side view's figure


def check_picture_memory(image, canvas: Tuple[int, int], panels: int = 1) -> None:
    """Refuse a picture of `image` (drawn `panels` times) on a canvas of
    (W, H) pixels that the memory limit would not allow: a large input is
    drawn 1:1 and read whole (a tiled map's image may be a TIFF of any size)."""
    height, width = image.shape[:2]
    need = panels * array_bytes(image.shape, PICTURE_BYTES_PER_VALUE) + \
        CANVAS_BYTES_PER_PIXEL * canvas[0] * canvas[1]
    check_memory(need, f"a {canvas[0]}x{canvas[1]} picture of a {height}x{width} image",
                 "leave out the picture (--picture) for an image this large")


def layout(height: int, width: int) -> int:
    """Pixels of the picture per pixel of the input (small inputs are
    enlarged so the map is legible; large ones kept 1:1)."""
    return int(max(1, min(8, 600 // max(height, width))))


def picture_format(path: str) -> str:
    """'png' or 'jpeg' from `path`'s suffix; any other suffix is refused."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise FileError(f"cannot tell the picture format of {path!r}: use a .png, .jpg or "
                        ".jpeg name")
    return FORMATS[suffix]


def check_picture_path(path: str) -> str:
    """`path` checked as a picture to write, before anything is drawn: its
    format, and a target that may be replaced (atomic_files.output_target)."""
    kind = picture_format(path)
    output_target(path, "picture")
    return kind


def heat_extent(geometry, cells: Tuple[int, int]) -> Tuple[float, float, float, float]:
    """imshow's (left, right, bottom, top) putting each cell's square on
    its window's centre."""
    (sh, sw), (wh, ww) = geometry.stride, geometry.window
    rows, cols = cells
    left, top = ww / 2 - sw / 2, wh / 2 - sh / 2
    return left, left + cols * sw, top + rows * sh, top


def draw_overlay(dense, cls: Optional[int] = None, detections: Sequence = (), figure=None):
    """A matplotlib Figure with the map of class `cls` (default: that of the
    best detection, else the image's top class: plot.shown_class) over the
    input, in colours from the map's own range, and the `detections` drawn,
    their labels apart."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    image = dense.image
    height, width = image.shape[:2]
    scale = layout(height, width)
    w_px, h_px = width * scale + BAR_PX, height * scale + CAPTION_PX
    check_picture_memory(image, (w_px, h_px))
    if figure is None:
        figure = Figure(figsize=(w_px / DPI, h_px / DPI), dpi=DPI)
    if cls is None:
        cls = shown_class(dense, detections)
    axes = figure.add_axes((0, CAPTION_PX / h_px, width * scale / w_px, height * scale / h_px))
    axes.set_axis_off()
    shown = image[:, :, 0] if image.shape[2] == 1 else image
    axes.imshow(np.clip(shown, 0, 1), cmap="gray", vmin=0, vmax=1,
                extent=(0, width, height, 0), interpolation="nearest")
    values = np.asarray(dense.scores[cls])
    low, high = colour_range(values)
    extent = (heat_extent(dense.geometry, values.shape) if dense.geometry is not None
              else (0, width, height, 0))  # no geometry: stretched (said in the caption)
    heat = axes.imshow(values, cmap=COLORMAP, vmin=low, vmax=high, alpha=HEAT_ALPHA,
                       extent=extent, interpolation="bilinear")
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)
    for d in detections:
        x0, y0, x1, y1 = d.box
        axes.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="white",
                                 linewidth=1.5))
    place_labels(figure, axes, detections, scale)
    bar = figure.add_axes(((width * scale + 12) / w_px, (CAPTION_PX + 0.1 * height * scale) / h_px,
                           14 / w_px, 0.8 * height * scale / h_px))
    figure.colorbar(heat, cax=bar)
    bar.tick_params(labelsize=7)
    g = dense.geometry
    where = (f"window {g.window[0]}x{g.window[1]}, stride {g.stride[0]}" if g is not None
             else "geometry unknown: map stretched over the image")
    figure.text(0.01, 0.5 * CAPTION_PX / h_px,
                f"{dense.label(cls)} [{cls}]: score per cell ({dense.shape[0]}x{dense.shape[1]}), "
                f"{where}; {colour_legend(low, high)}", fontsize=8, va="center", ha="left")
    return figure


def place_labels(figure, axes, detections: Sequence, scale: int) -> None:
    """Each detection's label ("five 0.99") by its box, best first, at the
    first place where it covers no label placed before: inside the box's
    top-left corner, above it, inside the bottom-left corner, below it;
    where all four are taken, moved down past the labels in its way.
    Extents are matplotlib's own, measured by the renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    if not hasattr(figure.canvas, "get_renderer"):
        FigureCanvasAgg(figure)
    renderer = figure.canvas.get_renderer()
    placed = []
    for d in detections:
        x0, y0, x1, y1 = d.box
        text = axes.text(x0 + 1, y0 + 1, f"{d.label} {d.score:.2f}", color="black",
                         fontsize=8, ha="left", bbox=dict(facecolor="white", alpha=0.8, pad=1,
                                                          linewidth=0))
        for x, y, va in ((x0 + 1, y0 + 1, "top"), (x0 + 1, y0 - 1, "bottom"),
                         (x0 + 1, y1 - 1, "bottom"), (x0 + 1, y1 + 1, "top")):
            text.set_position((x, y))
            text.set_va(va)
            if not _covered(_extent(text, renderer), placed):
                break
        else:
            text.set_position((x0 + 1, y0 + 1))
            text.set_va("top")
            for _ in range(len(placed)):
                below = _covered(_extent(text, renderer), placed)
                if below is None:
                    break
                # Screen rows grow down as the image's do: y + pixels / scale.
                x, y = text.get_position()
                text.set_position((x, y + (_extent(text, renderer).y1 - below.y0) / scale))
        placed.append(_extent(text, renderer))


def _extent(text, renderer):
    """The label's box on the canvas, its white pad included."""
    return text.get_window_extent(renderer).padded(2)


def _covered(box, placed):
    """The first of the `placed` boxes that `box` overlaps, or None."""
    return next((other for other in placed if box.overlaps(other)), None)


def draw_window_labels(image: np.ndarray, labels: np.ndarray, geometry, background: int,
                       boxes: Sequence = (), figure=None):
    """A matplotlib Figure with the ground truth of every cell
    (window_labels) over `image` (H x W x C in [0, 1]): each class its own
    colour on its cells, background faint grey, ignored cells (negative)
    left clear; `boxes` (x0, y0, x1, y1, class) outlined."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    height, width = image.shape[:2]
    scale = layout(height, width)
    w_px, h_px = width * scale, height * scale + CAPTION_PX
    check_picture_memory(image, (w_px, h_px))
    if figure is None:
        figure = Figure(figsize=(w_px / DPI, h_px / DPI), dpi=DPI)
    axes = figure.add_axes((0, CAPTION_PX / h_px, 1, height * scale / h_px))
    axes.set_axis_off()
    axes.imshow(np.clip(image[:, :, 0] if image.shape[2] == 1 else image, 0, 1), cmap="gray",
                vmin=0, vmax=1, extent=(0, width, height, 0), interpolation="nearest")
    colours = np.zeros((*labels.shape, 4))
    objects = (labels >= 0) & (labels != background)
    colours[objects] = colormaps["tab10"](labels[objects] % 10)
    colours[objects, 3] = HEAT_ALPHA
    colours[labels == background] = (0.6, 0.6, 0.6, 0.25)
    axes.imshow(colours, extent=heat_extent(geometry, labels.shape), interpolation="nearest")
    for x0, y0, x1, y1, cls in boxes:
        axes.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, linewidth=1.2,
                                 edgecolor=colormaps["tab10"](int(cls) % 10)))
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)
    figure.text(0.01, 0.5 * CAPTION_PX / h_px,
                f"label per cell ({labels.shape[0]}x{labels.shape[1]}): colour = class, grey = "
                "background, clear = ignored", fontsize=8, va="center", ha="left")
    return figure


def draw_strides(maps: Sequence, cls: Optional[int] = None, figure=None):
    """Maps of one image at different strides (the net before and after
    ``rarefy``) side by side, each over the input with every cell drawn as
    a stride-sized square on its window's centre, unblended, so that each
    grid shows; one colour scale for all. `cls` defaults to the first map's
    top class (plot.shown_class)."""
    from matplotlib.figure import Figure
    if not maps or any(m.geometry is None for m in maps):
        raise ShapeError("draw_strides needs maps whose geometry is known (stride, window)")
    image = maps[0].image
    if any(m.image.shape != image.shape for m in maps):
        raise ShapeError("draw_strides compares maps of one image; these are of "
                         f"{[m.image.shape for m in maps]}")
    height, width = image.shape[:2]
    scale = layout(height, width)
    panel_w, panel_h = width * scale, height * scale
    w_px = len(maps) * (panel_w + GAP_PX) - GAP_PX + BAR_PX
    h_px = panel_h + TITLE_PX + CAPTION_PX
    check_picture_memory(image, (w_px, h_px), len(maps))
    if figure is None:
        figure = Figure(figsize=(w_px / DPI, h_px / DPI), dpi=DPI)
    if cls is None:
        cls = shown_class(maps[0])
    low, high = colour_range(np.concatenate([np.asarray(m.scores[cls]).ravel() for m in maps]))
    shown = image[:, :, 0] if image.shape[2] == 1 else image
    for k, dense in enumerate(maps):
        axes = figure.add_axes((k * (panel_w + GAP_PX) / w_px, CAPTION_PX / h_px,
                                panel_w / w_px, panel_h / h_px))
        axes.set_axis_off()
        axes.imshow(np.clip(shown, 0, 1), cmap="gray", vmin=0, vmax=1,
                    extent=(0, width, height, 0), interpolation="nearest")
        values = np.asarray(dense.scores[cls])
        heat = axes.imshow(values, cmap=COLORMAP, vmin=low, vmax=high, alpha=HEAT_ALPHA,
                           extent=heat_extent(dense.geometry, values.shape),
                           interpolation="nearest")
        axes.set_xlim(0, width)
        axes.set_ylim(height, 0)
        g = dense.geometry
        axes.set_title(f"stride {g.stride[0]}: {dense.shape[0]}x{dense.shape[1]} cells",
                       fontsize=9)
    bar = figure.add_axes(((w_px - BAR_PX + 12) / w_px, (CAPTION_PX + 0.1 * panel_h) / h_px,
                           14 / w_px, 0.8 * panel_h / h_px))
    figure.colorbar(heat, cax=bar)
    bar.tick_params(labelsize=7)
    g = maps[0].geometry
    figure.text(0.01, 0.5 * CAPTION_PX / h_px,
                f"{maps[0].label(cls)} [{cls}]: score per cell, each cell a "
                f"{g.window[0]}x{g.window[1]} window; {colour_legend(low, high)}", fontsize=8,
                va="center", ha="left")
    return figure


def write_figure(figure, path: str) -> None:
    """`figure` to `path`, PNG or JPEG by its suffix; the file appears whole
    or not at all."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    kind = check_picture_path(path)
    FigureCanvasAgg(figure)
    data = io.BytesIO()
    figure.savefig(data, format=kind, dpi=DPI)
    write_bytes(path, data.getvalue(), "picture")


def save_picture(dense, path: str, cls: Optional[int] = None, detections: Sequence = (),
                 side_by_side: bool = False) -> None:
    """Write the overlay (or the side-by-side view) to `path`, PNG or JPEG
    by its suffix; the file appears whole or not at all."""
    from matplotlib.figure import Figure
    check_picture_path(path)  # a bad name is refused before anything is drawn
    if side_by_side:
        check_picture_memory(dense.image, SIDE_BY_SIDE_PX)
        figure = plot_dense_map(dense, cls, Figure(
            figsize=(SIDE_BY_SIDE_PX[0] / DPI, SIDE_BY_SIDE_PX[1] / DPI), dpi=DPI))
    else:
        figure = draw_overlay(dense, cls, detections or ())
    write_figure(figure, path)


def save_window_labels_picture(path: str, image: np.ndarray, labels: np.ndarray, geometry,
                               background: int, boxes: Sequence = ()) -> None:
    """Write ``draw_window_labels`` to `path` (PNG or JPEG), whole or not at all."""
    check_picture_path(path)
    write_figure(draw_window_labels(image, labels, geometry, background, boxes), path)


def save_strides_picture(maps: Sequence, path: str, cls: Optional[int] = None) -> None:
    """Write ``draw_strides`` of `maps` to `path` (PNG or JPEG)."""
    check_picture_path(path)
    write_figure(draw_strides(maps, cls), path)
