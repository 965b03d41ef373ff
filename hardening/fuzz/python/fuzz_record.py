"""Fuzz target: a batch record (surgery.dask_batch.read_record, what a
rerun finds in --out) gives a dict or one of surgery's errors. Inputs:
corpus/record/."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def check(record) -> None:
    assert isinstance(record, dict), f"read_record returned {type(record).__name__}"


def main() -> None:
    try:
        from surgery.dask_batch import read_record
    except ImportError:
        harness.skip("record", "this tree has no surgery.dask_batch.read_record")
    harness.fuzz(read_record, check, lambda data: ".json", ["surgery", "json"])


if __name__ == "__main__":
    main()
