"""Where each output cell of a fully convolutional net looks in its input.

Computed in C++ from the layers' kernels, strides, pads, dilations and
Caffe's rounding (``src/cpp/surgery/definition/geometry.cpp``); this module only
converts the result and applies a window the caller gives.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence, Tuple, Union

from . import _core
from .errors import ShapeError
from .net import Net

WindowLike = Union[int, Sequence[int], None]

# What each rule of compute_geometry means, for reports and errors.
WINDOW_RULES = {
    "given": "given by the caller (window=)",
    "recorded": "the classifier's input, recorded by caffe-surgery's conversion",
    "declared": "the declared input, which gives one cell",
    "exact fit": "the size at which every layer's windows fit exactly, walking back from "
                 "one cell (the receptive field less the padding)",
}


@dataclass(frozen=True)
class Geometry:
    """Where output cell (i, j) looks in the input, from the layers' parameters.

    ``window`` (H, W) is the input region a cell stands for: cell (i, j) is
    the window at (i * stride, j * stride) of that size. ``window_rule`` says
    how it was chosen (see ``WINDOW_RULES``). ``min_input`` (H, W) is the
    smallest image each side accepts (one cell), by Caffe's arithmetic.
    ``receptive_field`` is every pixel the cell depends on, starting at
    ``receptive_offset`` (negative where layers pad), so it can be larger.
    ``gate_poolings`` are the global poolings of squeeze-and-excitation gates:
    they scale every cell's channels by what they saw of the whole input.
    """
    window: Tuple[int, int]
    stride: Tuple[int, int]
    receptive_field: Tuple[int, int]
    receptive_offset: Tuple[int, int]
    padded_layers: Tuple[str, ...]
    gate_poolings: Tuple[str, ...] = ()
    min_input: Tuple[int, int] = (1, 1)
    window_rule: str = "declared"

    def window_of(self, i: int, j: int) -> Tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of cell (i, j)'s window; x1, y1 exclusive.

        Caffe rounds pooled sizes up, so the last cells' windows may run past
        the image's right and bottom edges (DenseMap.boxes clips them)."""
        y0, x0 = i * self.stride[0], j * self.stride[1]
        return x0, y0, x0 + self.window[1], y0 + self.window[0]

    def center_of(self, i: int, j: int) -> Tuple[float, float]:
        """(x, y) of the centre of cell (i, j)'s window."""
        x0, y0, x1, y1 = self.window_of(i, j)
        return (x0 + x1) / 2, (y0 + y1) / 2


def as_window(window: WindowLike) -> Optional[Tuple[int, int]]:
    """`window` as (H, W): one int for a square, or two positive ints."""
    if window is None:
        return None
    try:
        h, w = (window, window) if isinstance(window, int) else tuple(window)
        if int(h) != h or int(w) != w or h < 1 or w < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ShapeError(f"window must be a positive size or (H, W), not {window!r}") from None
    return int(h), int(w)


def geometry(net: Net, blob: Optional[str] = None,
             window: WindowLike = None) -> Optional[Geometry]:
    """Geometry of ``blob`` (default: the first output) over the first input;
    None where it cannot be derived (no input, no output, unmodelled layers,
    no window by any rule and none given). ``window`` (H, W) overrides the
    window the rules choose."""
    given = as_window(window)
    if blob is None:
        outputs = net.outputs
        if not outputs:
            return None
        blob = outputs[0]
    g = _core.geometry(net, blob)
    if not g.known:
        return None
    h, w = g.receptive_h, g.receptive_w
    geo = Geometry(window=(g.window_h, g.window_w), stride=(h.stride, w.stride),
                   receptive_field=(h.size, w.size), receptive_offset=(h.offset, w.offset),
                   padded_layers=tuple(g.padded_layers), gate_poolings=tuple(g.gate_poolings),
                   min_input=(g.min_input_h, g.min_input_w), window_rule=g.window_rule)
    if given is not None:
        return replace(geo, window=given, window_rule="given")
    return geo if g.window_rule else None
