"""Net surgery from Python: ``fully_convolutionalize`` and its report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

from . import _core
from .errors import SurgeryError
from .geometry import WINDOW_RULES, Geometry, geometry
from .net import Net, PathLike, as_net
from .rarefy import RarefiedLayer, rarefy
from .rarefy import describe as describe_rarefied

Shape = Sequence[int]


# One layer the surgery changed, as the core reports it (read-only fields:
# old_name, old_type, new_name, new_type, old_shape, new_shape, kernel (h, w),
# num_output, copied); bound once in src/cpp/bindings/surgery.cpp.
ConvertedLayer = _core.ConvertedLayer


def describe(layer: ConvertedLayer) -> str:
    """One line saying what happened to `layer`."""
    kh, kw = layer.kernel
    if layer.old_type == "Pooling":
        return f"{layer.old_name}: global pooling -> fixed {kh}x{kw} window, stride 1"
    old = "x".join(map(str, layer.old_shape))
    new = "x".join(map(str, layer.new_shape))
    how = "weights transposed (copied)" if layer.copied else "same memory"
    return (f"{layer.old_name} ({layer.old_type} {old}) -> {layer.new_name} "
            f"({layer.new_type} {kh}x{kw}, {layer.num_output} outputs, {new}; {how})")


@dataclass
class SurgeryResult:
    net: Net
    layers: List[ConvertedLayer]
    removed: List[str]
    geometry: Optional[Geometry]
    warnings: List[str] = field(default_factory=list)
    rarefied: List[RarefiedLayer] = field(default_factory=list)  # with factor= or stride=

    def __str__(self) -> str:
        lines = [f"converted {len(self.layers)} layer(s)" if self.layers
                 else "nothing to convert: the net is already fully convolutional"]
        lines += [f"  {describe(layer)}" for layer in self.layers]
        lines += [f"  removed {name} (only reshaped its bottom)" for name in self.removed]
        if self.rarefied:
            lines.append(f"rarefied {len(self.rarefied)} layer(s) for a finer output stride")
            lines += [f"  {describe_rarefied(layer)}" for layer in self.rarefied]
        if self.geometry:
            g = self.geometry
            lines.append(f"each output cell = one {g.window[0]}x{g.window[1]} window at stride "
                         f"{g.stride[0]}x{g.stride[1]} (receptive field "
                         f"{g.receptive_field[0]}x{g.receptive_field[1]} from offset "
                         f"{g.receptive_offset[0]},{g.receptive_offset[1]}); window: "
                         f"{WINDOW_RULES[g.window_rule]}; smallest input "
                         f"{g.min_input[0]}x{g.min_input[1]} (HxW)")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _input_shapes(net: Net, input_shape: Union[Shape, Dict[str, Shape], None]
                  ) -> Dict[str, Shape]:
    if input_shape is None:
        return {}
    if isinstance(input_shape, dict):
        return input_shape
    inputs = net.inputs
    if len(inputs) != 1:
        raise SurgeryError(f"the net has inputs {inputs}: give input_shape as a dict")
    return {inputs[0]: input_shape}


# Layers named in a warning; ResNet-50 has 17 padded ones, a line's worth.
NAMED_LAYERS = 4


def _some_layers(names: Sequence[str]) -> str:
    """'layers a, b' or, for many, 'N layers (a, b, c, d and M more:
    Geometry.padded_layers lists them)'."""
    if len(names) <= NAMED_LAYERS:
        return f"layer{'s' if len(names) > 1 else ''} {', '.join(names)}"
    return (f"{len(names)} layers ({', '.join(names[:NAMED_LAYERS])} and "
            f"{len(names) - NAMED_LAYERS} more: Geometry.padded_layers lists them)")


def _warnings(geo: Optional[Geometry], converted: bool) -> List[str]:
    """What the caller should know about the converted net's output geometry."""
    warnings = []
    if geo and geo.padded_layers:
        warnings.append(
            f"{_some_layers(geo.padded_layers)} pad their input: a dense cell differs "
            "slightly from the original net run on the matching crop (the crop sees zeros "
            "at its border where the large image has real neighbours)")
    if geo and geo.gate_poolings:
        warnings.append(
            f"the squeeze-and-excitation gates {', '.join(geo.gate_poolings)} stay global: "
            "they scale every cell's channels by what they saw of the whole input, so a dense "
            "cell differs from the original net run on the matching crop")
    if geo and geo.window_rule == "exact fit":
        warnings.append(
            f"the window {geo.window[0]}x{geo.window[1]} is the exact-fit rule's guess: this "
            "net came fully convolutional, with no recorded window and a declared input that "
            "gives more than one cell, so the size its classifier took cannot be known from "
            "the layers (Caffe rounds pooled sizes up, so inputs from "
            f"{geo.min_input[0]}x{geo.min_input[1]} up may give one cell; GoogLeNet and "
            "ResNet took another size than the exact fit): if it took another, pass "
            "window=(H, W) to dense_forward (caffe-surgery dense --window H,W)")
    if geo is None and converted:
        warnings.append("the output geometry could not be derived from the layers")
    return warnings


def _check_arguments(prototxt: Union[PathLike, Net], weights: Optional[PathLike],
                     out_prototxt: Optional[PathLike], out_weights: Optional[PathLike]) -> None:
    """Refuses a call that cannot succeed before anything is loaded."""
    live = isinstance(prototxt, Net)
    if live and weights is not None:
        raise SurgeryError("a live Net already holds its weights: pass weights=None")
    if out_weights is not None and weights is None and not live:
        raise SurgeryError("out_weights needs weights to convert")
    if out_prototxt is not None and out_weights is not None and (
            os.fsencode(os.path.realpath(out_prototxt)) ==
            os.fsencode(os.path.realpath(out_weights))):  # a str and a bytes path alike
        raise SurgeryError("out_prototxt and out_weights are the same file "
                           f"{os.fspath(out_prototxt)!r}")
    for out in (out_prototxt, out_weights):
        if out is not None and not live and os.path.exists(out) and (
                os.path.samefile(out, prototxt) or (weights and os.path.samefile(out, weights))):
            raise SurgeryError(f"refusing to overwrite the input {os.fspath(out)!r}")


def fully_convolutionalize(prototxt: Union[PathLike, Net], weights: Optional[PathLike] = None,
                           out_prototxt: Optional[PathLike] = None,
                           out_weights: Optional[PathLike] = None, *,
                           suffix: Optional[str] = "-conv",
                           input_shape: Union[Shape, Dict[str, Shape], None] = None,
                           factor: Optional[int] = None, stride: Optional[int] = None
                           ) -> SurgeryResult:
    """Make a classification net fully convolutional.

    ``prototxt`` is a deploy prototxt (with ``weights``, its caffemodel, or
    None to convert the definition alone) or a live ``surgery.Net`` or
    ``surgery.pycaffe.Net``, which is converted in place (the result's
    ``net`` is then a surgery.Net over the same memory). Every InnerProduct becomes a Convolution whose kernel
    covers its bottom blob at the declared input size (or ``input_shape``);
    weights keep their memory. ``factor`` (or the output ``stride`` wanted)
    then rarefies the result (``surgery.rarefy``): a map ``factor`` times
    denser, exactly. Outputs, if given, are written atomically; inputs are
    never modified.
    """
    if not isinstance(prototxt, (str, bytes, os.PathLike)):
        prototxt = as_net(prototxt)
    _check_arguments(prototxt, weights, out_prototxt, out_weights)
    net = prototxt if isinstance(prototxt, Net) else Net(prototxt, weights)
    report = _core.fully_convolutionalize(net, suffix, _input_shapes(net, input_shape))
    rarefied = []
    if factor is not None or stride is not None:
        rarefied = rarefy(net, factor, stride=stride).layers
    geo = geometry(net)
    result = SurgeryResult(net=net, layers=list(report.layers), removed=list(report.removed),
                           geometry=geo, warnings=_warnings(geo, bool(report.layers)),
                           rarefied=rarefied)
    if out_prototxt is not None or out_weights is not None:
        net.save(out_prototxt, out_weights)
    return result

