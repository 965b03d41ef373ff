"""Image files are hostile too: the size in the header is checked against
the memory limit before a pixel is decoded, and only regular files are read."""

import os
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

import surgery

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


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    png_bomb(bomb, 12000, 12000)  # 144 M pixels: 2 GB as float RGB
    assert bomb.stat().st_size < 1 << 20
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import surgery
        surgery.set_memory_limit({LIMIT})
        try:
            surgery.load_image({str(bomb)!r})
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
