"""Image files are hostile too: the size in the header is checked against
the memory limit before a pixel is decoded, and only regular files are read."""

import io
import os
import pathlib
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

import surgery
import surgery.pycaffe as caffe
from test_files import memory_mib, reset_peak_rss, run_isolated

LIMIT = 256 << 20


def png_bomb(path, height, width):
    """A grey 8-bit PNG of zeros: `height` x `width` pixels in a few hundred kB.
    Written a row at a time, so making it takes no more memory than reading it should."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte, then the pixels
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", data))
        f.write(chunk(b"IEND", b""))


# pycaffe's face reads images with this reader too.
@pytest.mark.parametrize("load_image", ["surgery.load_image", "surgery.pycaffe.io.load_image"])
def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, load_image):
    bomb = tmp_path / "bomb.png"
    png_bomb(bomb, 12000, 12000)  # 144 M pixels: 2 GB as float RGB
    assert bomb.stat().st_size < 1 << 20
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import surgery, surgery.pycaffe
        surgery.set_memory_limit({LIMIT})
        try:
            {load_image}({str(bomb)!r})
            print("decoded")
        except surgery.ShapeError as error:
            print("refused", "memory limit" in str(error))
        with open("/proc/self/status") as f:
            print(next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM")))
        """)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    verdict, peak = run.stdout.splitlines()
    assert verdict == "refused True"
    assert int(peak) < LIMIT, f"peak RSS {int(peak) >> 20} MiB"


def test_an_image_within_the_limit_still_loads(tmp_path):
    small = tmp_path / "small.png"
    png_bomb(small, 30, 40)
    image = surgery.load_image(small)
    assert image.shape == (30, 40, 3) and image.dtype == np.float32 and not image.any()


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_files_that_are_not_regular_are_refused_before_reading(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "pipe.png"
        os.mkfifo(path)  # reading it would wait for a writer forever
    elif kind == "device":
        path = "/dev/zero"  # reading it would never end
    else:
        path = tmp_path
    with pytest.raises(surgery.FileError, match="not a regular file"):
        surgery.load_image(path)


def test_a_file_that_is_not_an_image_is_a_file_error(tmp_path):
    path = tmp_path / "text.png"
    path.write_text("not an image")
    with pytest.raises(surgery.FileError):
        surgery.load_image(path)


# ---- frames: only the first is decoded, as for a still image ---------------

def gif_blocks(data):
    """A GIF's bytes split into (header, screen and global palette; [each
    frame: its extensions and image block]), the trailer left out."""
    pos = 13
    if data[10] & 0x80:
        pos += 3 << ((data[10] & 7) + 1)
    head, frames, start = data[:pos], [], pos

    def past_sub_blocks(pos):
        while data[pos]:
            pos += data[pos] + 1
        return pos + 1

    while data[pos] != 0x3B:
        if data[pos] == 0x21:  # extension: label, sub-blocks
            pos = past_sub_blocks(pos + 2)
        elif data[pos] == 0x2C:  # image: descriptor, local palette, LZW code size, sub-blocks
            local = data[pos + 9]
            pos += 10 + ((3 << ((local & 7) + 1)) if local & 0x80 else 0)
            pos = past_sub_blocks(pos + 1)
            frames.append(data[start:pos])
            start = pos
        else:
            raise ValueError(f"not a GIF block: {data[pos]:#x}")
    return head, frames


def gif_bomb(path, frames, height, width):
    """An animated grey GIF: a first frame of stripes, then `frames` - 1
    copies of one flat frame (a few KB each, LZW), all height x width. The
    copies are repeated as bytes, so making it holds two frames, not all."""
    from PIL import Image
    first = Image.fromarray(((np.arange(height)[:, None] * 7 + np.arange(width) // 50) % 251)
                            .astype(np.uint8), "L")
    flat = Image.new("L", (width, height), 200)
    two = io.BytesIO()
    first.save(two, "GIF", save_all=True, append_images=[flat], optimize=False)
    head, (one, other) = gif_blocks(two.getvalue())
    with open(path, "wb") as f:
        f.write(head + one + other * (frames - 1) + b";")


def pillow_first_frame(path):
    """The oracle: Pillow's own decode of frame 0, as RGB floats in [0, 1]."""
    from PIL import Image
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), np.float64) / 255


def test_a_300_frame_gif_gives_its_first_frame_within_the_limit(tmp_path):
    """300 frames of 1000x1000 in under 1 MB: each frame fits the limit, all
    of them stacked (and turned to floats) would need gigabytes."""
    path, result = tmp_path / "frames.gif", tmp_path / "loaded.npy"
    gif_bomb(path, 300, 1000, 1000)
    assert path.stat().st_size < 1 << 20

    def case():
        surgery.set_memory_limit(surgery.memory_in_use() + LIMIT)
        reset_peak_rss()
        start = memory_mib("VmRSS")
        image = surgery.load_image(path)
        grown = memory_mib("VmHWM") - start
        assert grown < LIMIT >> 20, f"peak RSS grew by {grown:.0f} MiB"
        np.save(result, image)
    outcome = run_isolated(case, timeout=60)
    assert outcome.kind == "ok", outcome
    loaded = np.load(result)
    assert loaded.shape == (1000, 1000, 3) and loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, pillow_first_frame(path).astype(np.float32))


def write_frames(path, kind, frames):
    from PIL import Image
    images = [Image.fromarray(f) for f in frames]
    if kind == "tif":
        images[0].save(path, save_all=True, append_images=images[1:])
    else:  # an animated GIF or PNG
        images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)


@pytest.mark.parametrize("kind", ["gif", "png", "tif"])
def test_a_file_of_frames_gives_its_first(tmp_path, kind):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (3, 20, 30, 3), dtype=np.uint8)
    path = tmp_path / f"frames.{kind}"
    write_frames(path, kind, list(frames))
    image = surgery.load_image(path)
    assert image.shape == (20, 30, 3)
    np.testing.assert_array_equal(image, pillow_first_frame(path).astype(np.float32))


def pycaffe_load_image(path, color):
    """caffe.io.load_image, line for line (python/caffe/io.py)."""
    import skimage.io
    from skimage import img_as_float
    img = img_as_float(skimage.io.imread(path, as_gray=not color)).astype(np.float32)
    if img.ndim == 2:
        img = img[:, :, np.newaxis]
        if color:
            img = np.tile(img, (1, 1, 3))
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    return img


STILLS = {
    "rgb.png": lambda rng: rng.integers(0, 256, (17, 23, 3), dtype=np.uint8),
    "rgba.png": lambda rng: rng.integers(0, 256, (17, 23, 4), dtype=np.uint8),
    "grey16.png": lambda rng: rng.integers(0, 65536, (17, 23), dtype=np.uint16),
    "grey.jpg": lambda rng: rng.integers(0, 256, (17, 23), dtype=np.uint8),
    "rgb.bmp": lambda rng: rng.integers(0, 256, (17, 23, 3), dtype=np.uint8),
    "grey16.tif": lambda rng: rng.integers(0, 65536, (17, 23), dtype=np.uint16),
}


# Not GIF: skimage gives any GIF, even of one frame, as a stack (1 x H x W x C),
# which pycaffe's load_image passes on as it is; a GIF gives its first frame here
# (test_a_file_of_frames_gives_its_first).
@pytest.mark.parametrize("color", [True, False])
@pytest.mark.parametrize("name", sorted(STILLS) + ["palette.png"])
def test_a_still_image_loads_as_pycaffe_loads_it(tmp_path, name, color):
    """Pillow now decodes (the first frame) where skimage did: the same numbers."""
    from PIL import Image
    path = tmp_path / name
    rng = np.random.default_rng(len(name))
    if name.startswith("palette"):
        rgb = Image.fromarray(rng.integers(0, 256, (17, 23, 3), dtype=np.uint8))
        rgb.quantize(16).save(path, transparency=0)
    else:
        Image.fromarray(STILLS[name](rng)).save(path)
    expected = pycaffe_load_image(path, color)
    np.testing.assert_array_equal(surgery.load_image(path, color=color), expected)
    np.testing.assert_array_equal(caffe.io.load_image(path, color=color), expected)


# --- inputs the fuzzer found (hardening/fuzz/crashes/image), replayed here ---

CRASHES = pathlib.Path(__file__).resolve().parents[2] / "hardening" / "fuzz" / "crashes"


def test_a_tiff_whose_strips_start_past_its_end_is_refused_before_any_read():
    """1 KB whose next strip offset says 4 GiB: Pillow reads up to it in one
    read, for which Python allocated 4 GiB."""
    path = CRASHES / "image" / "963004f38e99cdc9"
    assert path.stat().st_size < 4096

    def case():
        surgery.set_memory_limit(256 * 2**20)
        reset_peak_rss()
        before = memory_mib("VmHWM")
        try:
            surgery.preprocess.load_image(path)
        finally:
            grown = memory_mib("VmHWM") - before
            assert grown < 64, f"grew {grown:.0f} MiB"
    outcome = run_isolated(case, timeout=30)
    assert (outcome.kind, outcome.detail) == ("error", "FileError"), outcome
    assert "past the file's end" in outcome.message and path.name in outcome.message


def test_an_image_file_of_nan_is_refused_as_an_array_of_nan_is():
    with pytest.raises(surgery.ShapeError, match="NaN or infinite") as error:
        surgery.preprocess.load_image(CRASHES / "image" / "attack-nan.tif")
    assert "attack-nan.tif" in str(error.value)
    with pytest.raises(surgery.ShapeError, match="NaN or infinite"):
        surgery.preprocess.as_image(np.full((4, 4, 3), np.nan, np.float32), 3)
