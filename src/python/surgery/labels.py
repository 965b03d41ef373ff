"""Class names for a net's output channels, checked against the channels."""

from __future__ import annotations

import os
from typing import List, Sequence, Union

from .atomic_files import LABELS_BYTES, read_text
from .errors import ShapeError

# The class fine-tuning adds for windows that hold no object: the dense
# command never reports it as a detection.
BACKGROUND = "background"

LabelsLike = Union[str, "os.PathLike[str]", Sequence[str]]


def load_labels(path) -> List[str]:
    """Class names, one per non-blank line; the name is the part before the
    first comma (synset_words.txt's 'n01440764 tench, Tinca tinca' gives
    'n01440764 tench'). Only a regular file of at most LABELS_BYTES is read."""
    text = read_text(path, "labels", LABELS_BYTES)
    return [line.strip().split(",")[0] for line in text.split("\n") if line.strip()]


def check_labels(labels: LabelsLike, classes: int) -> List[str]:
    """`labels` (a list of names, or a labels file's path) as a list of
    exactly `classes` names; a count that differs raises ShapeError saying
    why (a header line, a file for another net)."""
    source = None
    if isinstance(labels, (str, os.PathLike)):
        source = os.fspath(labels)
        labels = load_labels(labels)
    names = [str(name) for name in labels]
    if len(names) == classes:
        return names
    where = f"labels file {source!r}" if source else "labels"
    hint = ""
    if len(names) == classes + 1:
        hint = (f" (one too many: if the first line, {names[0]!r}, is a header, remove it, "
                "or every name after it would belong to the next class)")
    elif len(names) < classes:
        hint = " (is this the labels file of another net?)"
    raise ShapeError(f"{where} has {len(names)} names, but the net's output has {classes} "
                     f"channels{hint}")
