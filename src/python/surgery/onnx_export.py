"""Export of a net (converted or not) to an ONNX graph that any ONNX runtime
runs: ``export_onnx(net, path)``, ``caffe-surgery export``.

The graph is built with the ``onnx`` package's helpers from the net as it
stands: its definition (read back as Caffe's own NetParameter, through the
caffe_pb2 this package is built with), its weights and its blob shapes. A
net with no InnerProduct, Flatten or Reshape gets symbolic height and width
(and every net a symbolic batch), so one file runs at any size, as the
net does here. Every layer is translated before a byte is written; a layer
ONNX has no exact form for raises ``ExportError`` naming it, and the file
appears whole or not at all (surgery.atomic_files).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from .atomic_files import Outputs, replacing
from .errors import ExportError
from .loss_map import definition_text
from .memory_budget import check_memory
from .net import Net, PathLike, as_net

# Opset 18 (ONNX 1.13, late 2022): every operator used here has had its
# present semantics since opset 13 or earlier (Softmax along one axis since
# 13), and 18 is read by every ONNX Runtime from 1.14 on, TensorRT 8.6 and
# OpenCV 4.8 on; a later opset would add nothing the graph uses and shut
# out those runtimes.
OPSET = 18
# The protobuf message limit: one serialized ModelProto holds at most 2 GiB.
MODEL_BYTES = 2**31 - 1
# Layer types whose output size is fixed by the input's: with one of them,
# the exported height and width are the net's own.
SIZE_BOUND = ("InnerProduct", "Flatten", "Reshape")


def _onnx():
    """The onnx module, or an ImportError saying how to get it."""
    try:
        import onnx
    except ModuleNotFoundError as missing:
        raise ImportError("exporting to ONNX needs the onnx package: pip install "
                          "'caffe-surgery[onnx]'") from missing
    return onnx


def _caffe_pb2():
    try:
        from .pycaffe.proto import caffe_pb2
    except ImportError as missing:
        raise ImportError("exporting to ONNX reads the net's definition with surgery.pycaffe's "
                          f"caffe_pb2, which cannot be imported: {missing}") from missing
    return caffe_pb2


@dataclasses.dataclass
class _Graph:
    """The graph under construction: nodes, weights, and which ONNX value
    holds each Caffe blob now (Caffe's in-place layers rewrite a blob; ONNX
    values are written once, so each rewrite is a new value)."""
    onnx: Any
    net: Net
    nodes: List[Any] = dataclasses.field(default_factory=list)
    weights: List[Any] = dataclasses.field(default_factory=list)
    current: Dict[str, str] = dataclasses.field(default_factory=dict)
    last_writer: Dict[str, str] = dataclasses.field(default_factory=dict)

    def bottom(self, layer, k: int = 0) -> str:
        return self.current[layer.bottom[k]]

    def top(self, layer, k: int = 0) -> str:
        """A new value for `layer`'s top k: the blob's own name if no later
        layer rewrites it (so the net's outputs keep their Caffe names)."""
        blob = layer.top[k]
        name = blob if self.last_writer[blob] == layer.name else f"{blob}@{layer.name}"
        self.current[blob] = name
        return name

    def constant(self, name: str, array: np.ndarray) -> str:
        self.weights.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: Sequence[str], outputs: Sequence[str], name: str,
             **attributes) -> None:
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), list(outputs), name=name,
                                                     **attributes))

    def params(self, layer) -> List[np.ndarray]:
        return list(self.net.params.get(layer.name, []))

    def rank(self, blob: str) -> int:
        return self.net.blobs[blob].ndim


def _refuse(layer, why: str, remedy: str) -> ExportError:
    return ExportError(f"layer {layer.name!r} ({layer.type}) {why}: {remedy}")


def _pair(repeated, h: int, w: int, default: int) -> List[int]:
    """Caffe's two ways of giving a spatial setting: a repeated field (one
    value for both axes, or one per axis) or its _h/_w fields."""
    if h or w:
        return [h, w]
    values = list(repeated) or [default]
    return values * 2 if len(values) == 1 else values


def _convolution(g: _Graph, layer) -> None:
    p = layer.convolution_param
    weights = g.params(layer)
    if weights[0].ndim != 4 or p.axis != 1:
        raise _refuse(layer, f"convolves {weights[0].ndim - 2} spatial axes from axis {p.axis}",
                      "only 2-D convolutions over NCHW blobs are exported")
    if p.width_group != 1 or p.height_group != 1:
        raise _refuse(layer, "groups its spatial axes", "ONNX Conv has no such grouping")
    pad = _pair(p.pad, p.pad_h, p.pad_w, 0)
    inputs = [g.bottom(layer), g.constant(f"{layer.name}.weight", weights[0])]
    if p.bias_term:
        inputs.append(g.constant(f"{layer.name}.bias", weights[1]))
    # This Caffe's stride_h/stride_w default to 1, not 0: only a set one
    # overrides the repeated stride.
    g.node("Conv", inputs, [g.top(layer)], layer.name,
           kernel_shape=list(weights[0].shape[2:]),
           strides=_pair(p.stride, p.stride_h if p.HasField("stride_h") else 0,
                         p.stride_w if p.HasField("stride_w") else 0, 1),
           pads=pad + pad, dilations=_pair(p.dilation, 0, 0, 1), group=p.group)


def _pooling(g: _Graph, layer) -> None:
    p, kinds = layer.pooling_param, type(layer.pooling_param)
    op = {kinds.MAX: "MaxPool", kinds.AVE: "AveragePool"}.get(p.pool)
    if op is None:
        raise _refuse(layer, "pools stochastically", "ONNX has no stochastic pooling")
    if p.global_pooling:
        g.node(f"Global{op}", [g.bottom(layer)], [g.top(layer)], layer.name)
        return
    pad = _pair([p.pad], p.pad_h, p.pad_w, 0)
    kernel = _pair([p.kernel_size], p.kernel_h, p.kernel_w, 0)
    stride = _pair([p.stride], p.stride_h, p.stride_w, 1)
    # Caffe sizes the output like ONNX's ceil_mode (or floor) and, with
    # padding, drops a last window that would start in the right padding,
    # as ONNX does; an average divides by the window clipped to the padded
    # input, which is count_include_pad. Without padding Caffe drops
    # nothing: rounding up with a stride above the kernel, it adds windows
    # starting past the input's end, whose cells are -FLT_MAX or NaN (0/0).
    if p.ceil_mode and any(not pa and s > k for pa, s, k in zip(pad, stride, kernel)):
        raise _refuse(layer, f"rounds up with a stride {stride} above its kernel {kernel} and "
                             "no padding, so Caffe adds windows that start past the input's end "
                             "(cells of -FLT_MAX, or NaN for an average) and ONNX drops them",
                      "those cells are no result: set ceil_mode: false in its pooling_param "
                      "(the same output less those cells) and export that")
    attributes = dict(kernel_shape=kernel, strides=stride, pads=pad + pad,
                      ceil_mode=int(p.ceil_mode))
    if op == "AveragePool":
        attributes["count_include_pad"] = 1
    g.node(op, [g.bottom(layer)], [g.top(layer)], layer.name, **attributes)


def _inner_product(g: _Graph, layer) -> None:
    p = layer.inner_product_param
    if p.axis != 1:
        raise _refuse(layer, f"multiplies from axis {p.axis}", "only axis 1 is exported")
    weights = g.params(layer)
    flat = f"{layer.name}.flat"
    g.node("Flatten", [g.bottom(layer)], [flat], f"{layer.name}.flatten", axis=1)
    inputs = [flat, g.constant(f"{layer.name}.weight", weights[0])]
    if p.bias_term:
        inputs.append(g.constant(f"{layer.name}.bias", weights[1]))
    g.node("Gemm", inputs, [g.top(layer)], layer.name, transB=int(not p.transpose))


def _relu(g: _Graph, layer) -> None:
    slope = layer.relu_param.negative_slope
    if slope:
        g.node("LeakyRelu", [g.bottom(layer)], [g.top(layer)], layer.name, alpha=slope)
    else:
        g.node("Relu", [g.bottom(layer)], [g.top(layer)], layer.name)


def _lrn(g: _Graph, layer) -> None:
    p = layer.lrn_param
    if p.norm_region == type(p).ACROSS_CHANNELS:
        g.node("LRN", [g.bottom(layer)], [g.top(layer)], layer.name, size=p.local_size,
               alpha=p.alpha, beta=p.beta, bias=p.k)
        return
    # WITHIN_CHANNEL, as Caffe computes it: x * (1 + alpha * mean of x^2
    # over the size x size window, zero-padded)^-beta; k is not used. With
    # stride 1 and pad (size-1)/2 every window holds size^2 cells, padding
    # counted.
    x, name, half = g.bottom(layer), layer.name, (p.local_size - 1) // 2
    g.node("Mul", [x, x], [f"{name}.square"], f"{name}.square")
    g.node("AveragePool", [f"{name}.square"], [f"{name}.mean"], f"{name}.mean",
           kernel_shape=[p.local_size] * 2, pads=[half] * 4, count_include_pad=1)
    g.node("Mul", [f"{name}.mean", g.constant(f"{name}.alpha", np.float32(p.alpha))],
           [f"{name}.scaled"], f"{name}.scaled")
    g.node("Add", [f"{name}.scaled", g.constant(f"{name}.one", np.float32(1))],
           [f"{name}.base"], f"{name}.base")
    g.node("Pow", [f"{name}.base", g.constant(f"{name}.power", np.float32(-p.beta))],
           [f"{name}.factor"], f"{name}.factor")
    g.node("Mul", [x, f"{name}.factor"], [g.top(layer)], name)


def _softmax(g: _Graph, layer) -> None:
    g.node("Softmax", [g.bottom(layer)], [g.top(layer)], layer.name,
           axis=layer.softmax_param.axis)


def _identity(g: _Graph, layer) -> None:
    """Dropout at test time, and Split: each top is the bottom."""
    for k in range(len(layer.top)):
        g.node("Identity", [g.bottom(layer)], [g.top(layer, k)],
               layer.name if k == 0 else f"{layer.name}.{k}")


def _concat(g: _Graph, layer) -> None:
    p = layer.concat_param
    axis = p.axis if p.HasField("axis") or not p.HasField("concat_dim") else p.concat_dim
    g.node("Concat", [g.bottom(layer, k) for k in range(len(layer.bottom))], [g.top(layer)],
           layer.name, axis=axis)


def _eltwise(g: _Graph, layer) -> None:
    p = layer.eltwise_param
    kinds = type(p)
    inputs = [g.bottom(layer, k) for k in range(len(layer.bottom))]
    if p.operation == kinds.SUM and any(c != 1 for c in p.coeff):
        for k, c in enumerate(p.coeff):
            scaled = f"{layer.name}.term{k}"
            g.node("Mul", [inputs[k], g.constant(f"{scaled}.coeff", np.float32(c))], [scaled],
                   scaled)
            inputs[k] = scaled
    op = {kinds.SUM: "Sum", kinds.PROD: "Mul", kinds.MAX: "Max"}[p.operation]
    if op == "Mul" and len(inputs) > 2:  # ONNX's Mul takes two; Sum and Max take any number
        for k in range(1, len(inputs) - 1):
            partial = f"{layer.name}.product{k}"
            g.node("Mul", [inputs[0], inputs[k]], [partial], partial)
            inputs[0] = partial
        inputs = [inputs[0], inputs[-1]]
    g.node(op, inputs, [g.top(layer)], layer.name)


def _batch_norm(g: _Graph, layer) -> None:
    p = layer.batch_norm_param
    if p.HasField("use_global_stats") and not p.use_global_stats:
        raise _refuse(layer, "normalizes by each batch's own statistics",
                      "export a net whose BatchNorm layers use their stored statistics "
                      "(use_global_stats: true, the default at test time)")
    if p.use_alpha_beta:
        raise _refuse(layer, "has this Caffe fork's alpha/beta form", "not exported")
    mean, variance, factor = g.params(layer)[:3]
    # Caffe stores running sums and their weight: the statistics are the sums over it.
    scale = np.float32(0 if factor.flat[0] == 0 else 1 / factor.flat[0])
    channels = mean.shape[0]
    g.node("BatchNormalization",
           [g.bottom(layer), g.constant(f"{layer.name}.one", np.ones(channels, np.float32)),
            g.constant(f"{layer.name}.zero", np.zeros(channels, np.float32)),
            g.constant(f"{layer.name}.mean", mean * scale),
            g.constant(f"{layer.name}.variance", variance * scale)],
           [g.top(layer)], layer.name, epsilon=p.eps)


def _scale(g: _Graph, layer) -> None:
    """x times a factor spanning axes axis .. axis + n of x (a weight, or a
    second bottom), plus an optional bias, broadcast over the later axes."""
    p = layer.scale_param
    x_rank, axis = g.rank(layer.bottom[0]), p.axis % g.rank(layer.bottom[0])
    weights = g.params(layer)
    if len(layer.bottom) == 2:
        factor = g.bottom(layer, 1)
        trailing = x_rank - axis - g.rank(layer.bottom[1])
        if trailing:
            axes = g.constant(f"{layer.name}.axes",
                              np.arange(x_rank - trailing, x_rank, dtype=np.int64))
            g.node("Unsqueeze", [factor, axes], [f"{layer.name}.factor"], f"{layer.name}.factor")
            factor = f"{layer.name}.factor"
        bias = weights[0] if weights else None
    else:
        trailing = x_rank - axis - weights[0].ndim
        factor = g.constant(f"{layer.name}.weight",
                            weights[0].reshape(weights[0].shape + (1,) * trailing))
        bias = weights[1] if len(weights) > 1 else None
    if bias is None:
        g.node("Mul", [g.bottom(layer), factor], [g.top(layer)], layer.name)
        return
    product = f"{layer.name}.product"
    g.node("Mul", [g.bottom(layer), factor], [product], product)
    g.node("Add", [product, g.constant(f"{layer.name}.bias",
                                       bias.reshape(bias.shape + (1,) * trailing))],
           [g.top(layer)], layer.name)


def _flatten(g: _Graph, layer) -> None:
    p = layer.flatten_param
    if p.end_axis not in (-1, g.rank(layer.bottom[0]) - 1):
        raise _refuse(layer, f"flattens only up to axis {p.end_axis}",
                      "ONNX Flatten keeps no axes after the flattened ones")
    g.node("Flatten", [g.bottom(layer)], [g.top(layer)], layer.name, axis=p.axis)


def _reshape(g: _Graph, layer) -> None:
    p = layer.reshape_param
    if p.axis != 0 or p.num_axes != -1:
        raise _refuse(layer, "reshapes part of its blob (axis/num_axes)",
                      "only whole-blob reshapes are exported")
    # Caffe's 0 (copy that axis) and -1 (infer it) mean the same in ONNX's Reshape.
    shape = g.constant(f"{layer.name}.shape", np.array(p.shape.dim, np.int64))
    g.node("Reshape", [g.bottom(layer), shape], [g.top(layer)], layer.name)


LAYERS: Dict[str, Callable[[_Graph, Any], None]] = {
    "Convolution": _convolution, "Pooling": _pooling, "InnerProduct": _inner_product,
    "ReLU": _relu, "LRN": _lrn, "Softmax": _softmax, "Dropout": _identity, "Split": _identity,
    "Concat": _concat, "Eltwise": _eltwise, "BatchNorm": _batch_norm, "Scale": _scale,
    "Flatten": _flatten, "Reshape": _reshape,
}
# What to say of a layer type with no exact ONNX form.
UNEXPRESSIBLE = {
    "DilatedPooling": ("pools with gaps between its window's cells, rounding as Caffe's "
                       "pooling does; ONNX's dilated pooling rounds and pads otherwise",
                       "export the converted net before rarefying it (without stride= / "
                       "factor=): its map has the net's own stride"),
}


def _translate(g: _Graph, layer) -> None:
    translate = LAYERS.get(layer.type)
    if translate is None:
        why, remedy = UNEXPRESSIBLE.get(layer.type, (
            "has no ONNX form in this exporter",
            f"the layer types exported are Input, {', '.join(sorted(LAYERS))}"))
        raise _refuse(layer, why, remedy)
    translate(g, layer)


def _input(g: _Graph, blob: str, dynamic: bool):
    shape = list(g.net.blobs[blob].shape)
    dims: List[Any] = ["N", *shape[1:]]
    if dynamic and len(shape) == 4:
        dims[2:] = ["H", "W"]
    g.current[blob] = blob
    return g.onnx.helper.make_tensor_value_info(blob, g.onnx.TensorProto.FLOAT, dims)


def _output(g: _Graph, blob: str):
    """The output's type: its rank and channels; the batch and spatial
    sizes are left open (they follow the input's)."""
    dims = [None, *g.net.blobs[blob].shape[1:2], *[None] * (g.rank(blob) - 2)]
    return g.onnx.helper.make_tensor_value_info(g.current[blob], g.onnx.TensorProto.FLOAT,
                                                dims[:g.rank(blob)])


def _weight_bytes(net: Net) -> int:
    """The bytes of the net's weights; more than one ONNX file holds is refused."""
    count = sum(blob.nbytes for blobs in net.params.values() for blob in blobs)
    if count > MODEL_BYTES:
        raise ExportError(f"the net's weights take {count} bytes, more than one ONNX file of "
                          f"{MODEL_BYTES} bytes holds (protobuf's limit; ONNX's external-data "
                          "form is not written)")
    return count


def _definition(net: Net):
    from google.protobuf import text_format
    definition = _caffe_pb2().NetParameter()
    text_format.Parse(definition_text(net), definition)
    return definition


def to_onnx(net, outputs: Optional[Sequence[str]] = None):
    """`net` (a surgery.Net or pycaffe face, converted or not) as an
    ``onnx.ModelProto`` at opset ``OPSET``, not yet written anywhere.

    Its inputs and outputs carry the Caffe blobs' names; `outputs` picks
    the blobs to output (default: the net's outputs), each as it stands
    after the last layer that writes it. Batch is symbolic (``N``), and
    height and width too (``H``, ``W``) unless a layer fixes the input's
    size (InnerProduct, Flatten, Reshape). Raises ExportError, naming the
    layer, for a layer ONNX cannot express; MemoryLimitError if the
    weights' copy would pass the memory limit."""
    onnx = _onnx()
    net = as_net(net)
    check_memory(_weight_bytes(net), "the ONNX model of the net (a copy of its weights)")
    layers = [layer for layer in _definition(net).layer if layer.type != "Input"]
    g = _Graph(onnx, net)
    for layer in layers:
        for blob in layer.top:
            g.last_writer[blob] = layer.name
    dynamic = not any(layer.type in SIZE_BOUND for layer in layers)
    inputs = [_input(g, blob, dynamic) for blob in net.inputs]
    for layer in layers:
        _translate(g, layer)
    wanted = list(net.outputs if outputs is None else outputs)
    unknown = [blob for blob in wanted if blob not in g.current]
    if unknown:
        raise ExportError(f"no blob named {', '.join(map(repr, unknown))} in the net: its "
                          f"blobs are {', '.join(g.current)}")
    results = [_output(g, blob) for blob in wanted]
    graph = onnx.helper.make_graph(g.nodes, net.name or "net", inputs, results, g.weights)
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                  producer_name="caffe-surgery")


def export_onnx(net, path: PathLike, outputs: Optional[Sequence[str]] = None) -> None:
    """Write `net` as an ONNX model to `path` (see ``to_onnx``): every
    layer is translated and the model checked (onnx.checker) before the
    file is written, whole or not at all; the net's own prototxt is never
    overwritten."""
    net = as_net(net)
    target = Outputs([("the net's prototxt", net.source)]).claim(path, "the ONNX file")
    # The model, its serialized bytes and the checker's own copy of them.
    check_memory(3 * _weight_bytes(net), "the ONNX model of the net, written")
    model = to_onnx(net, outputs)
    onnx = _onnx()
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString()
    with replacing(target, binary=True, what="the ONNX file") as f:
        f.write(data)
