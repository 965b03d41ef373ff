"""Net surgery from Python: ``fully_convolutionalize`` and its report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

from . import _core
from .errors import SurgeryError
from .net import Net, PathLike

Shape = Sequence[int]


@dataclass(frozen=True)
class ConvertedLayer:
    """One layer the surgery changed."""
    old_name: str
    old_type: str
    new_name: str
    new_type: str
    old_shape: Tuple[int, ...]   # weights before (empty for pooling)
    new_shape: Tuple[int, ...]   # weights after
    kernel: Tuple[int, int]      # (h, w)
    num_output: int              # 0 for pooling
    copied: bool                 # weights rearranged (transpose: true); else same memory

    def __str__(self) -> str:
        kh, kw = self.kernel
        if self.old_type == "Pooling":
            return (f"{self.old_name}: global pooling -> fixed {kh}x{kw} window, stride 1")
        old = "x".join(map(str, self.old_shape))
        new = "x".join(map(str, self.new_shape))
        how = "weights transposed (copied)" if self.copied else "same memory"
        return (f"{self.old_name} ({self.old_type} {old}) -> {self.new_name} "
                f"({self.new_type} {kh}x{kw}, {self.num_output} outputs, {new}; {how})")


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


@dataclass
class SurgeryResult:
    net: Net
    layers: List[ConvertedLayer]
    removed: List[str]
    geometry: Optional[Geometry]
    warnings: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"converted {len(self.layers)} layer(s)" if self.layers
                 else "nothing to convert: the net is already fully convolutional"]
        lines += [f"  {layer}" for layer in self.layers]
        lines += [f"  removed {name} (only reshaped its bottom)" for name in self.removed]
        if self.geometry:
            g = self.geometry
            lines.append(f"each output cell = one {g.window[0]}x{g.window[1]} window at stride "
                         f"{g.stride[0]}x{g.stride[1]} (receptive field "
                         f"{g.receptive_field[0]}x{g.receptive_field[1]} from offset "
                         f"{g.receptive_offset[0]},{g.receptive_offset[1]})")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def geometry(net: Net, blob: Optional[str] = None) -> Optional[Geometry]:
    """Geometry of ``blob`` (default: the first output) over the first input;
    None where it cannot be derived (no input, no output, unmodelled layers)."""
    if not net.inputs or not (blob or net.outputs):
        return None
    blob = blob or net.outputs[0]
    g = _core.geometry(net, blob)
    if not g["known"]:
        return None
    # The declared size, not the current one: the net may have run on a larger image.
    window = tuple(_core.declared_input_shapes(net)[net.inputs[0]][2:4])
    if len(window) != 2:
        return None
    h, w = g["receptive_h"], g["receptive_w"]
    return Geometry(window=window, stride=(h["stride"], w["stride"]),
                    receptive_field=(h["size"], w["size"]),
                    receptive_offset=(h["offset"], w["offset"]),
                    padded_layers=tuple(g["padded_layers"]))


def _input_shapes(net: Net, input_shape) -> Dict[str, List[int]]:
    if input_shape is None:
        return {}
    if isinstance(input_shape, dict):
        return {name: [int(d) for d in shape] for name, shape in input_shape.items()}
    if len(net.inputs) != 1:
        raise SurgeryError(f"the net has inputs {net.inputs}: give input_shape as a dict")
    return {net.inputs[0]: [int(d) for d in input_shape]}


def convert_in_place(net: Net, *, suffix: Optional[str] = "-conv",
                     input_shape=None) -> SurgeryResult:
    raw_layers, removed = _core.fully_convolutionalize(net, suffix, _input_shapes(net, input_shape))
    layers = [ConvertedLayer(**{k: tuple(v) if isinstance(v, list) else v
                                for k, v in layer.items()}) for layer in raw_layers]
    geo = geometry(net)
    warnings = []
    if geo and geo.padded_layers:
        warnings.append(
            f"layers {', '.join(geo.padded_layers)} pad their input: a dense cell differs "
            "slightly from the original net run on the matching crop (the crop sees zeros "
            "at its border where the large image has real neighbours)")
    if geo is None and layers:
        warnings.append("the output geometry could not be derived from the layers")
    return SurgeryResult(net=net, layers=layers, removed=list(removed), geometry=geo,
                         warnings=warnings)


def fully_convolutionalize(prototxt: Union[PathLike, Net], weights: Optional[PathLike] = None,
                           out_prototxt: Optional[PathLike] = None,
                           out_weights: Optional[PathLike] = None, *,
                           suffix: Optional[str] = "-conv",
                           input_shape: Union[Shape, Dict[str, Shape], None] = None
                           ) -> SurgeryResult:
    """Make a classification net fully convolutional.

    ``prototxt`` is a deploy prototxt (with ``weights``, its caffemodel, or
    None to convert the definition alone) or a live ``surgery.Net``, which is
    converted in place. Every InnerProduct becomes a Convolution whose kernel
    covers its bottom blob at the declared input size (or ``input_shape``);
    weights keep their memory. Outputs, if given, are written atomically;
    inputs are never modified.
    """
    live = isinstance(prototxt, Net)
    # Argument checks first: nothing is loaded for a call that cannot succeed.
    if live and weights is not None:
        raise SurgeryError("a live Net already holds its weights: pass weights=None")
    if out_weights is not None and weights is None and not live:
        raise SurgeryError("out_weights needs weights to convert")
    if out_prototxt is not None and out_weights is not None and (
            os.path.realpath(out_prototxt) == os.path.realpath(out_weights)):
        raise SurgeryError("out_prototxt and out_weights are the same file "
                           f"{os.fspath(out_prototxt)!r}")
    for out in (out_prototxt, out_weights):
        if out is not None and not live and os.path.exists(out) and (
                os.path.samefile(out, prototxt) or (weights and os.path.samefile(out, weights))):
            raise SurgeryError(f"refusing to overwrite the input {os.fspath(out)!r}")
    net = prototxt if live else Net(prototxt, weights)
    result = convert_in_place(net, suffix=suffix, input_shape=input_shape)
    if out_prototxt is not None or out_weights is not None:
        net.save(out_prototxt, out_weights)
    return result
