"""Fuzz target: a labels file (surgery.labels.load_labels) gives a list of
names or one of surgery's errors. Inputs: corpus/labels/."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def check(names) -> None:
    assert isinstance(names, list), f"load_labels returned {type(names).__name__}"
    assert all(isinstance(name, str) for name in names), "load_labels returned a non-str name"


def main() -> None:
    from surgery.labels import load_labels
    harness.fuzz(load_labels, check, lambda data: ".txt", ["surgery"])


if __name__ == "__main__":
    main()
