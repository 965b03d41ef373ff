"""Writes the caffemodel target's seeds: weights for the tiny net of
targets/tiny_net.hpp in each form a reader meets (current layers with float
data, legacy num/channels/height/width dims, double data, V1 layers), about
a kilobyte each. The protobuf wire format is written by hand (stdlib only,
field numbers from caffe.proto), so it runs before anything is built.

    python3 hardening/fuzz/make_seeds.py FOLDER     (run.sh writes them into build/.../seeds/caffemodel)
"""

from __future__ import annotations

import math
import pathlib
import struct
import sys

# The tiny net's layers with params and their blob shapes (conv: 3 outputs,
# 2 channels, 3x3; its output 3x4x4 feeds the inner product's 48 inputs).
LAYERS = [
    ("conv", "Convolution", [(3, 2, 3, 3), (3,)]),
    ("bn", "BatchNorm", [(3,), (3,), (1,)]),
    ("scale", "Scale", [(3,), (3,)]),
    ("ip", "InnerProduct", [(4, 48), (4,)]),
]
V1_TYPES = {"Convolution": 4, "InnerProduct": 14}  # V1LayerParameter.LayerType


def varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:  # length-delimited
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def number(field_number: int, value: int) -> bytes:  # varint
    return varint(field_number << 3) + varint(value)


def values(shape) -> list[float]:
    count = math.prod(shape)
    return [math.sin(1.3 * i + len(shape)) / 2 for i in range(count)]


def blob(shape, form: str) -> bytes:
    data = values(shape)
    if form == "double":
        body = field(8, struct.pack(f"<{len(data)}d", *data))
    else:
        body = field(5, struct.pack(f"<{len(data)}f", *data))
    if form == "legacy":
        dims = (1,) * (4 - len(shape)) + tuple(shape)
        return b"".join(number(n, d) for n, d in zip((1, 2, 3, 4), dims)) + body
    return field(7, field(1, b"".join(varint(d) for d in shape))) + body


def net(form: str) -> bytes:
    out = field(1, b"tiny")  # NetParameter.name
    for name, type_, shapes in LAYERS:
        blobs = [blob(s, form) for s in shapes]
        if form == "v1":
            if type_ not in V1_TYPES:
                continue  # V1 had no BatchNorm or Scale
            layer = field(4, name.encode()) + number(5, V1_TYPES[type_])
            out += field(2, layer + b"".join(field(6, b) for b in blobs))
        else:
            layer = field(1, name.encode()) + field(2, type_.encode())
            out += field(100, layer + b"".join(field(7, b) for b in blobs))
    return out


def main() -> int:
    folder = pathlib.Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    for form in ("float", "legacy", "double", "v1"):
        (folder / f"seed-tiny-{form}.caffemodel").write_bytes(net(form if form != "float" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
