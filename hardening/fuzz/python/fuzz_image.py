"""Fuzz target: an image file (surgery.preprocess.load_image, in colour)
gives finite float32 H x W x 3 within the memory limit or one of surgery's
errors;
every frame of a GIF or TIFF, every tile, counts. Inputs: corpus/image/."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# First bytes -> the suffix a file of that format would have.
MAGIC = [(b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"GIF8", ".gif"),
         (b"II*\0", ".tif"), (b"MM\0*", ".tif"), (b"II+\0", ".tif"), (b"MM\0+", ".tif"),
         (b"BM", ".bmp"), (b"RIFF", ".webp")]


def suffix(data: bytes) -> str:
    return next((s for magic, s in MAGIC if data.startswith(magic)), ".img")


def check(image) -> None:
    import numpy as np
    harness.check_array(image, "load_image")
    assert image.dtype.name == "float32", f"load_image returned {image.dtype}"
    assert image.ndim == 3 and image.shape[2] == 3 and image.size, \
        f"load_image(color=True) returned shape {image.shape}"
    # The rule for arrays (as_image refuses NaN and infinities) holds for files.
    assert np.isfinite(image).all(), "load_image returned NaN or infinite values"


# Coverage from the package and the Python code that parses these formats'
# headers (Pillow's plugins; tifffile's if the package loaded it), not all
# of Pillow: instrumenting costs about 5 ms a function at every start.
INSTRUMENTED = ["surgery", "PIL.Image", "PIL.ImageFile", "PIL.ImageSequence", "PIL.TiffTags",
                *(f"PIL.{name}ImagePlugin" for name in ("Png", "Jpeg", "Gif", "Tiff", "Bmp",
                                                        "WebP")),
                "tifffile.tifffile"]


def main() -> None:
    from PIL import Image

    from surgery.preprocess import load_image
    Image.init()  # the plugins loaded now, so instrumented before the first input
    harness.fuzz(lambda path: load_image(path, color=True), check, suffix, INSTRUMENTED)


if __name__ == "__main__":
    main()
