"""The two brute-force definitions of shift-and-stitch, written
without rarefaction, as oracles for surgery.rarefy:

- layer-level: the original (converted, not rarefied) net cut at its reduced
  layers; each reduced layer's input is shifted by every phase (cropped), the
  rest runs with the original strides, and the phases are interleaved. This
  is what rarefaction computes, padding included.
- input-level: the original net on the input shifted by (dy, dx) * s/f for
  every phase, interleaved. A shifted input moves the zero border, so it
  agrees with rarefaction only on cells whose receptive field stays inside
  the image each of the two forwards sees (``inside_cells``).

Both give NaN where no phase gives a cell.
"""

import re

import numpy as np

import surgery


def layer_blocks(text):
    """The top-level `layer { ... }` blocks of a prototxt text, in order."""
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    blocks, depth, start = [], 0, None
    for m in re.finditer(r"\blayer\s*\{|\{|\}", text):
        if m.group().startswith("layer") and depth == 0:
            start = m.start()
        depth += 1 if m.group().endswith("{") else -1
        if depth == 0 and start is not None:
            blocks.append(text[start:m.end()])
            start = None
    return blocks


def field(block, name):
    return re.search(rf'\b{name}:\s*"([^"]+)"', block).group(1)


class Segments:
    """The original (converted, not rarefied) net cut at its reduced layers:
    segment k runs from reduced layer k to the next (segment 0 from the input).
    Each is a surgery.Net with the original's weights copied in (so the
    original may be rarefied in place afterwards); the last one stops at the
    scores, before the Softmax. `net` must be shaped to the input to come."""

    def __init__(self, net, prototxt_text, reduced, folder):
        blocks = layer_blocks(prototxt_text)
        names = [field(b, "name") for b in blocks]
        cuts = [names.index(name) for name in reduced]
        self.nets, self.inputs, self.outputs = [], [], []
        for k, (lo, hi) in enumerate(zip([1] + cuts, cuts + [len(blocks)])):
            top = "data" if k == 0 else field(blocks[lo], "bottom")
            shape = net.blobs[top].shape
            text = (f'layer {{ name: "in" type: "Input" top: "{top}" input_param {{ shape {{ '
                    + " ".join(f"dim: {d}" for d in shape) + " } } }\n" + "\n".join(blocks[lo:hi]))
            path = folder / f"segment{k}.prototxt"
            path.write_text(text)
            part = surgery.Net(path)
            for name, blobs in part.params.items():
                for mine, theirs in zip(blobs, net.params[name]):
                    mine[...] = theirs
            self.nets.append(part)
            self.inputs.append(top)
            # The last segment ends before the Softmax: its input, the scores,
            # keeps the float rounding of both ways visible at its own scale.
            self.outputs.append(field(blocks[hi] if hi < len(blocks) else blocks[-1], "bottom"))

    def forward(self, k, x):
        self.nets[k].forward(**{self.inputs[k]: x})
        return np.array(self.nets[k].blobs[self.outputs[k]])


def crop(y, start, kernel, stride):
    """y from `start` on (per axis), cut where the reduced pooling's windows
    would hang over the end: the rarefied net pools full windows only, while
    Caffe's ceil rounding adds a partial one."""
    h = y.shape[2] - start[0] - (y.shape[2] - start[0] - kernel[0]) % stride[0]
    w = y.shape[3] - start[1] - (y.shape[3] - start[1] - kernel[1]) % stride[1]
    return np.ascontiguousarray(y[:, :, start[0]:start[0] + h, start[1]:start[1] + w])


def interleave(phases, rh, rw):
    """Maps by phase (dy, dx) woven into one, phase (dy, dx) at rows dy::rh,
    columns dx::rw; NaN where no phase has a cell."""
    n, c = phases[0, 0].shape[:2]
    out = np.full((n, c, rh * max(p.shape[2] for p in phases.values()),
                   rw * max(p.shape[3] for p in phases.values())), np.nan, np.float32)
    for (dy, dx), p in phases.items():
        out[:, :, dy:dy + rh * p.shape[2]:rh, dx:dx + rw * p.shape[3]:rw] = p
    return out


def shift_and_stitch(segments, reductions, k, x):
    """Segment k and all after it on x, each later reduced layer's input
    shifted by every phase (crop), the phases interleaved."""
    y = segments.forward(k, x)
    if k + 1 == len(segments.nets):
        return y
    (rh, rw), (sh, sw), kernel, stride = reductions[k + 1]
    phases = {(dy, dx): shift_and_stitch(segments, reductions, k + 1,
                                         crop(y, (dy * sh, dx * sw), kernel, stride))
              for dy in range(rh) for dx in range(rw)}
    return interleave(phases, rh, rw)


def layer_level(segments, reduced, prototxt_text, x):
    """The layer-level shift-and-stitch of x through `segments` (cut at the
    layers rarefy reports as `reduced`; `prototxt_text` the original's)."""
    kernels = {field(b, "name"): int(re.search(r"kernel_size:\s*(\d+)", b).group(1))
               for b in layer_blocks(prototxt_text) if "kernel_size" in b}
    # Per reduced layer: its reduction (h, w), the shift of one phase in its
    # input's cells, its kernel and its original stride (square here).
    reductions = [None] + [(tuple(o // s for o, s in zip(layer.old_stride, layer.stride)),
                            layer.stride, (kernels[layer.name],) * 2, layer.old_stride)
                           for layer in reduced]
    return shift_and_stitch(segments, reductions, 0, x)


def input_level(net, x, factor, blob):
    """The input-level shift-and-stitch: blob `blob` of `net` (converted,
    not rarefied) on x shifted by (dy, dx) * s/f, interleaved."""
    step = surgery.geometry(net).stride[0] // factor
    phases = {}
    for dy in range(factor):
        for dx in range(factor):
            net.forward(data=np.ascontiguousarray(x[:, :, dy * step:, dx * step:]))
            phases[dy, dx] = np.array(net.blobs[blob])
    return interleave(phases, factor, factor)


def inside_cells(geo, factor, cells, size, axis):
    """Along `axis`, which of `cells` cells of a map rarefied by `factor`
    have a receptive field inside the image in both forwards that compute
    them: the rarefied one (image [0, size)) and the shifted one of phase
    i % f, whose image starts (i % f) * s/f later, so that its cell i // f
    must start at or after its own first pixel. `geo`: the original's."""
    stride, offset = geo.stride[axis], geo.receptive_offset[axis]
    i = np.arange(cells)
    return (offset + (i // factor) * stride >= 0) & \
        (offset + i * (stride // factor) + geo.receptive_field[axis] <= size)

