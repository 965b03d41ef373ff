"""Fuzz target: a mean file, .npy or .binaryproto as its first bytes say,
read (surgery.preprocess.load_mean: an array of numbers within the memory
limit) and fitted to a 3 x 8 x 8 net input as preprocessing does
(surgery.preprocess.as_mean: finite values of that shape, or per channel),
or one of surgery's errors. Inputs: corpus/mean/."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NPY_MAGIC = b"\x93NUMPY"
# The input the mean is fitted to: a colour image, small so that a mean
# file's own size decides the work.
INPUT = (3, 8, 8)


def suffix(data: bytes) -> str:
    # A file named for what it holds, as a user's would be; a mutation of
    # the magic sends the bytes to the other reader (the C++ BlobProto one).
    return ".npy" if data.startswith(NPY_MAGIC) else ".binaryproto"


def read_and_fit(path: str):
    from surgery.preprocess import as_mean, load_mean
    mean = harness.check_array(load_mean(path), "load_mean")
    return as_mean(mean, INPUT)


def check(fitted) -> None:
    import numpy as np
    harness.check_array(fitted, "as_mean")
    assert fitted.shape in (INPUT, (INPUT[0], 1, 1)), f"as_mean returned shape {fitted.shape}"
    # As an image with NaN or infinite values is refused (as_image), so is
    # a mean that would put them into every input.
    assert np.isfinite(fitted).all(), "as_mean returned NaN or infinite values"


def main() -> None:
    import surgery.preprocess  # noqa: F401  (loaded before it is instrumented)
    harness.fuzz(read_and_fit, check, suffix,
                 # numpy 2 keeps the .npy reader in numpy.lib._format_impl.
                 ["surgery", "numpy.lib.format", "numpy.lib._format_impl"])


if __name__ == "__main__":
    main()
