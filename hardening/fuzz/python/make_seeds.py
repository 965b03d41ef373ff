"""Writes the Python fuzz targets' seeds into corpus/TARGET/seed-*: small
valid files of each form the readers meet (a few hundred bytes each), from
which libFuzzer grows the rest; and the issue's attacks on these readers
into crashes/TARGET/attack-*. Needs numpy and Pillow (tifffile for the
tiled and multi-page TIFFs); run it with the package's Python:

    .venv/bin/python hardening/fuzz/python/make_seeds.py [FOLDER (hardening/fuzz)]
"""

from __future__ import annotations

import io
import json
import pathlib
import struct
import sys
import zlib

import numpy as np
from PIL import Image

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from make_seeds import blob, field, number  # noqa: E402  (the C++ targets' protobuf writer)


def npy(array: np.ndarray, version=None) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array, version=version, allow_pickle=False)
    return out.getvalue()


def means() -> dict:
    grid = np.linspace(0, 255, 3 * 4 * 5).reshape(3, 4, 5)
    return {
        "float32-chw.npy": npy(grid.astype(np.float32)),
        "float64-c.npy": npy(np.array([104.0, 117.0, 123.0])),
        "uint8-chw.npy": npy(grid.astype(np.uint8)[:, :2, :2]),
        "float16-fortran.npy": npy(np.asfortranarray(grid[:1, :2, :3].astype(np.float16))),
        "int32-hw-v2.npy": npy(grid[0].astype(np.int32), version=(2, 0)),
        "float32-v3.npy": npy(grid[:, :1, :1].astype(np.float32), version=(3, 0)),
        "chw.binaryproto": blob((3, 2, 2), ""),
        "legacy.binaryproto": blob((3, 2, 2), "legacy"),
        "double.binaryproto": blob((3, 1, 2), "double"),
        # The attacks of the issue (attack-*, kept in crashes/ so that no
        # minimizing drops them):
        # a header claiming 447 GiB in 128 bytes, pickled objects, a shape the
        # data does not fill, a Python 2 header (numpy's tokenize path), a
        # record dtype, a BlobProto of 2^40 x 2^30 values.
        "attack-huge-shape.npy": npy_header("<f4", (3, 200000, 200000)),
        "attack-object.npy": npy_header("|O", (3,)) + b"\x80\x04N.",
        "attack-short-data.npy": npy_header("<f8", (3, 4, 5)) + bytes(16),
        "attack-python2-header.npy": npy_raw_header(b"{'descr': '<f4', 'fortran_order': False, "
                                             b"'shape': (3L, 1L), }") + bytes(12),
        "attack-structured.npy": npy(np.zeros(2, dtype=[("a", "<f4"), ("b", "<i2")])),
        # Means that read well but cannot be used: no values in a plane,
        # NaN, complex numbers.
        "attack-empty-plane.npy": npy(np.zeros((3, 0, 4), np.float32)),
        "attack-nan.npy": npy(np.array([104.0, np.nan, 123.0])),
        "attack-complex.npy": npy(np.ones((3, 2, 2), np.complex64)),
        "attack-huge.binaryproto": b"".join(number(n, d) for n, d in
                                     zip((1, 2, 3, 4), (1, 3, 1 << 40, 1 << 30)))
        + field(5, struct.pack("<f", 1.0)),
    }


def npy_header(descr: str, shape) -> bytes:
    """A .npy header alone, saying what the data would be."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False,
                                               "shape": tuple(shape)})
    return out.getvalue()


def npy_raw_header(text: bytes) -> bytes:
    """A version 1.0 .npy header of `text` as is, padded as numpy pads."""
    size = -(-(len(text) + 11) // 64) * 64 - 10
    return np.lib.format.MAGIC_PREFIX + b"\x01\x00" + struct.pack("<H", size) \
        + text.ljust(size - 1) + b"\n"


def labels() -> dict:
    synsets = "".join(f"n0144076{i} tench{i}, Tinca tinca\n" for i in range(4))
    return {
        "synset.txt": synsets.encode(),
        "plain-crlf.txt": b"background\r\ncat\r\n\r\ndog\r\n",
        "utf8-bom.txt": "\ufeffcaf\u00e9\n\u732b\nna\u00efve, other\n".encode(),
        "attack-not-utf8.txt": b"cat\n\xff\xfe dog\n",
        "attack-formulas-nul.txt": b'=HYPERLINK("http://x")\n@SUM(1)\n\x00\n+cmd\n-1\n\tx\r\n',
        "attack-one-long-line.txt": b"n" * 3000,
    }


def records() -> dict:
    """Records as surgery.batch writes them (run_image): the current form,
    which names the model, settings and input, and the earlier one without
    them (now refused, a seed for the checks of every field)."""
    detection = {"class": 1, "label": "cat", "score": 0.93, "x0": 0.0, "y0": 4.5,
                 "x1": 227.0, "y1": 231.5, "row": 0, "column": 1}
    earlier = {"image": "/data/photos/cat.png", "map": "cat.png.npy", "map_shape": [2, 3, 4],
               "tiles": 1, "detections": [detection], "seconds": 0.25, "worker_pid": 4242}
    settings = {"background": [0], "convolution": "caffe", "map_format": "npy",
                "mean": "5f" * 32, "nms_iou": 0.3, "raw_scale": 255, "threshold": 0.5,
                "tile": None}
    current = dict(earlier, format="caffe-surgery result 1", input="0a" * 32, map="map.npy",
                   model={"prototxt": "c3" * 32, "weights": "9e" * 32}, settings=settings)
    return {
        "detections.json": dump(current),
        "no-weights-zarr.json": dump(dict(current, model={"prototxt": "c3" * 32, "weights": None},
                                          map="map.zarr", detections=[], tiles=4)),
        "earlier-form.json": dump(earlier),
        # The attacks of the issue: JSON that is not an object, nested past
        # Python's recursion limit, a number past int()'s digit limit, NaN,
        # a byte-order mark, a key given twice.
        "attack-list.json": b"[]",
        "attack-null.json": b"null",
        "attack-deep.json": b"[" * 3000 + b"]" * 3000,
        "attack-long-int.json": dump(current)[:-3] + b', "tiles": ' + b"7" * 4400 + b"}\n",
        "attack-nan-seconds.json": dump(dict(current, seconds=float("nan"))),
        "attack-bom.json": b"\xef\xbb\xbf" + dump(current),
        "attack-twice.json": dump(current)[:-3] + b', "image": 3}\n',
    }


def dump(record: dict) -> bytes:
    return (json.dumps(record, indent=1) + "\n").encode()


def image_bytes(images, format: str, **options) -> bytes:
    out = io.BytesIO()
    first, *rest = images
    if rest:
        options.update(save_all=True, append_images=rest)
    first.save(out, format=format, **options)
    return out.getvalue()


def tiff(array: np.ndarray, **options) -> bytes:
    import tifffile
    out = io.BytesIO()
    tifffile.imwrite(out, array, **options)
    return out.getvalue()


def images() -> dict:
    y, x = np.mgrid[0:12, 0:16]
    rgb = np.stack([x * 16, y * 20, (x + y) * 9], axis=-1).astype(np.uint8)
    colour = Image.fromarray(rgb)
    frames = [Image.fromarray(np.roll(rgb, 3 * i, axis=1)).convert("P") for i in range(3)]
    files = {
        "rgb.png": image_bytes([colour], "PNG"),
        "grey16.png": image_bytes([Image.fromarray((y * 4000).astype(np.uint16))], "PNG"),
        "palette-alpha.png": image_bytes([colour.convert("RGBA").convert("P")], "PNG"),
        "animated.png": image_bytes([colour, colour.transpose(Image.Transpose.FLIP_TOP_BOTTOM)],
                                    "PNG"),
        "rgb.jpg": image_bytes([colour], "JPEG", quality=50),
        "still.gif": image_bytes(frames[:1], "GIF"),
        "frames.gif": image_bytes(frames, "GIF", duration=40, loop=0),
        "rgb.bmp": image_bytes([colour.resize((4, 3))], "BMP"),
    }
    Image.init()  # fills Image.SAVE
    if "WEBP" in Image.SAVE:
        files["frames.webp"] = image_bytes([colour, frames[1].convert("RGB")], "WEBP",
                                           lossless=True)
    files.update(image_attacks(rgb))
    try:
        files["tiled.tif"] = tiff(np.tile(rgb, (3, 2, 1))[:32, :32], tile=(16, 16))
        files["pages.tif"] = tiff(np.stack([rgb[:, :, 0], rgb[:, :, 1]]))
        files["float32.tif"] = tiff(rgb[:4, :4].astype(np.float32) / 255)
    except ImportError:
        files["pages.tif"] = image_bytes([colour, colour.convert("L")], "TIFF")
    return files


def image_attacks(rgb: np.ndarray) -> dict:
    """Small files that claim much (the issue's classes): a 65535 x 65535 GIF
    canvas around a 1 x 1 frame, a PNG whose header says 100000 x 100000, a
    tiled TIFF of 100000 x 100000 with one tile, and forty GIF frames; and a
    float TIFF of NaN and infinity, which as an array would be refused."""
    dot = image_bytes([Image.fromarray(rgb[:1, :1]).convert("P")], "GIF")
    canvas = dot[:6] + struct.pack("<HH", 65535, 65535) + dot[10:]
    png = image_bytes([Image.fromarray(rgb[:1, :1])], "PNG")
    ihdr = struct.pack(">II", 100000, 100000) + png[24:29]
    png = png[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + png[33:]
    frames = [Image.fromarray(np.full((8, 8, 3), 6 * i, np.uint8)).convert("P")
              for i in range(40)]
    nan = np.array([[0.5, np.nan], [np.inf, 2.0]], np.float32)
    return {"attack-huge-canvas.gif": canvas, "attack-huge-header.png": png,
            "attack-nan.tif": image_bytes([Image.fromarray(nan, mode="F")], "TIFF"),
            "attack-huge-tiled.tif": tiff_by_hand(100000, 100000, tile=16),
            "attack-forty-frames.gif": image_bytes(frames, "GIF")}


def tiff_by_hand(width: int, height: int, tile: int) -> bytes:
    """A little-endian grey TIFF whose IFD says `width` x `height` in tiles of
    `tile`, holding one tile: what no writer would produce."""
    data = bytes(tile * tile)
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
               (277, 3, 1), (322, 3, tile), (323, 3, tile), (324, 4, 8),
               (325, 4, len(data))]
    ifd_at = 8 + len(data)
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3
                                             else struct.pack("<I", value))
        for tag, kind, value in entries) + struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", ifd_at) + data + ifd


def main() -> int:
    """Seeds into corpus/TARGET/seed-*, the attacks into crashes/TARGET/attack-*
    (replayed by CI as every crash input is, and never minimized away)."""
    root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent
    for target, files in [("mean", means()), ("labels", labels()), ("record", records()),
                          ("image", images())]:
        for name, content in files.items():
            path = (root / "crashes" / target / name if name.startswith("attack-")
                    else root / "corpus" / target / f"seed-{name}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        print(f"{target}: {len(files)} files, {sum(map(len, files.values()))} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
