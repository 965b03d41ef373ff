"""Where each output cell of a fully convolutional net looks in its input.

Computed in C++ from the layers' kernels, strides, pads and dilations
(``src/cpp/surgery/geometry.cpp``); this module only converts the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from . import _core
from .net import Net


@dataclass(frozen=True)
class Geometry:
    """Where output cell (i, j) looks in the input, from the layers' parameters.

    ``window`` is the input size the original classifier took: cell (i, j)
    stands for the window at (i * stride, j * stride) of that size.
    ``receptive_field`` is every pixel the cell depends on, starting at
    ``receptive_offset`` (negative where layers pad), so it can be larger.
    """
    window: Tuple[int, int]
    stride: Tuple[int, int]
    receptive_field: Tuple[int, int]
    receptive_offset: Tuple[int, int]
    padded_layers: Tuple[str, ...]

    def window_of(self, i: int, j: int) -> Tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of cell (i, j)'s window; x1, y1 exclusive.

        Caffe rounds pooled sizes up, so the last cells' windows may run past
        the image's right and bottom edges."""
        y0, x0 = i * self.stride[0], j * self.stride[1]
        return x0, y0, x0 + self.window[1], y0 + self.window[0]


def geometry(net: Net, blob: Optional[str] = None) -> Optional[Geometry]:
    """Geometry of ``blob`` (default: the first output) over the first input;
    None where it cannot be derived (no input, no output, unmodelled layers)."""
    if blob is None:
        outputs = net.outputs
        if not outputs:
            return None
        blob = outputs[0]
    g = _core.geometry(net, blob)
    if not g.known:
        return None
    h, w = g.receptive_h, g.receptive_w
    return Geometry(window=(g.window_h, g.window_w), stride=(h.stride, w.stride),
                    receptive_field=(h.size, w.size), receptive_offset=(h.offset, w.offset),
                    padded_layers=tuple(g.padded_layers))
