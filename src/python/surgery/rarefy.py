"""Filter rarefaction from Python: ``rarefy`` and its report.

A fully convolutional net of output stride s answers every s pixels;
``rarefy(net, factor=f)`` rewrites it in place to answer every s / f pixels,
exactly: the shift-and-stitch of OverFeat and FCN (section 3.2) computed in
one forward. The last strided layers lose their stride, every later
Convolution is dilated, every later Pooling becomes ``DilatedPooling`` (a
layer this library registers in Caffe). The work is done in C++
(``src/cpp/surgery/edit/rarefy.cpp``).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import List, Optional, Tuple

from . import _core
from .errors import ShapeError, SurgeryError
from .net import Net

# One layer rarefaction changed (read-only fields: name, old_type, new_type,
# old_stride (h, w), stride (h, w), dilation (h, w), reduced); bound once in
# src/cpp/bindings/surgery.cpp.
RarefiedLayer = _core.RarefiedLayer
# The core takes a C int.
FACTOR_MAX = 2**31 - 1


def describe(layer: RarefiedLayer) -> str:
    """One line saying what happened to `layer`."""
    def pair(p: Tuple[int, int]) -> str:
        return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"
    what = []
    if layer.reduced:
        what.append(f"stride {pair(layer.old_stride)} -> {pair(layer.stride)}")
    if layer.dilation != (1, 1):
        what.append(f"dilation {pair(layer.dilation)}")
    kind = layer.old_type if layer.old_type == layer.new_type else \
        f"{layer.old_type} -> {layer.new_type}"
    return f"{layer.name} ({kind}): {', '.join(what)}"


def output_stride(net: Net, blob: Optional[str] = None) -> Optional[Tuple[int, int]]:
    """The (H, W) stride of `blob` (default: the first output) over the
    input, from the layers; None where the layers do not tell."""
    outputs = net.outputs
    if blob is None and not outputs:
        return None
    g = _core.geometry(net, blob if blob is not None else outputs[0])
    return (g.receptive_h.stride, g.receptive_w.stride) if g.known else None


def rarefy_factors(net: Net) -> List[int]:
    """The factors ``rarefy`` takes for this net, ascending."""
    return list(_core.rarefy_factors(net))


@dataclass
class RarefyResult:
    net: Net
    factor: int
    layers: List[RarefiedLayer]
    stride: Optional[Tuple[int, int]]  # the output stride after

    def __str__(self) -> str:
        if not self.layers:
            return "rarefied by 1: nothing to change"
        lines = [f"rarefied by {self.factor}: {len(self.layers)} layer(s) changed"]
        lines += [f"  {describe(layer)}" for layer in self.layers]
        if self.stride:
            lines.append(f"output stride now {self.stride[0]}x{self.stride[1]} (HxW)")
        return "\n".join(lines)


def factor_for(net: Net, stride: int) -> int:
    """The factor that brings the net's output stride to `stride`."""
    now = output_stride(net)
    if now is None:
        raise SurgeryError("the net's output stride cannot be derived from its layers, so "
                           "give factor= instead of stride=")
    if not isinstance(stride, int) or stride < 1 or now[0] != now[1] or now[0] % stride:
        raise ShapeError(f"stride {stride!r} does not divide the net's output stride "
                         f"{now[0]}x{now[1]}; strides it can take: "
                         f"{', '.join(str(now[0] // f) for f in rarefy_factors(net)) or 'none'}")
    return now[0] // stride


def rarefy(net: Net, factor: Optional[int] = None, *, stride: Optional[int] = None
           ) -> RarefyResult:
    """Make a fully convolutional ``net`` answer ``factor`` times more densely,
    in place (give ``factor``, or the output ``stride`` wanted).

    Output cell (i, j) then stands for the window at (i, j) * stride, and
    equals the shift-and-stitch of the original net: the original net's cell
    for that window wherever its zero padding is not involved. Refused with
    the net unchanged: a factor its strides do not take (ShapeError, listing
    those they take), a layer after a reduced one that cannot be rewritten
    (NetDefinitionError naming it: an InnerProduct, a global pooling...;
    call ``fully_convolutionalize`` first).
    """
    if (factor is None) == (stride is None):
        raise SurgeryError("give factor= or stride=, one of them")
    if stride is not None:
        factor = factor_for(net, stride)
    if isinstance(factor, bool):
        raise ShapeError(f"factor must be an int, not {factor!r}")
    try:
        factor = operator.index(factor)
    except TypeError:
        raise ShapeError(f"factor must be an int, not {factor!r}") from None
    if not 1 <= factor <= FACTOR_MAX:
        raise ShapeError(f"factor {factor} is outside 1..{FACTOR_MAX}; it takes "
                         f"{', '.join(map(str, rarefy_factors(net))) or 'none'}")
    report = _core.rarefy(net, factor)
    return RarefyResult(net=net, factor=report.factor, layers=list(report.layers),
                        stride=output_stride(net))

