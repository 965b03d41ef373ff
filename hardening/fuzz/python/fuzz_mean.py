"""Fuzz target: a mean file (surgery.preprocess.load_mean), .npy or
.binaryproto as its first bytes say, gives an array of numbers within the
memory limit or one of surgery's errors. Inputs: corpus/mean/."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NPY_MAGIC = b"\x93NUMPY"


def suffix(data: bytes) -> str:
    # A file named for what it holds, as a user's would be; a mutation of
    # the magic sends the bytes to the other reader (the C++ BlobProto one).
    return ".npy" if data.startswith(NPY_MAGIC) else ".binaryproto"


def main() -> None:
    from surgery.preprocess import load_mean
    harness.fuzz(load_mean, lambda mean: harness.check_array(mean, "load_mean"), suffix,
                 # numpy 2 keeps the .npy reader in numpy.lib._format_impl.
                 ["surgery", "numpy.lib.format", "numpy.lib._format_impl"])


if __name__ == "__main__":
    main()
