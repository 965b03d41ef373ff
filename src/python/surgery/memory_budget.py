"""The memory limit applied to the arrays the Python side makes.

The core counts every Caffe blob against ``surgery.set_memory_limit`` before
it is allocated. The arrays this package makes around a forward (decoded
images, tile regions, stacked batches, maps, cell boxes) are numpy's, which
the core never sees; each is checked here, before it is made, against the
same limit, so that a refusal is a MemoryLimitError naming what would have
been made and how large it would have been, never a MemoryError from numpy
(or the kernel's OOM killer) halfway through.
"""

from __future__ import annotations

import math
from typing import Iterable

from . import _core
from .errors import MemoryLimitError


def array_bytes(shape: Iterable[int], itemsize: int) -> int:
    """Bytes of an array of `shape`, in Python integers: a header's sizes
    multiplied in numpy's int64 could wrap around to a small number."""
    return math.prod(int(d) for d in shape) * int(itemsize)


def size_text(count: int) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"


def check_memory(need: int, what: str, remedy: str = "") -> None:
    """Refuse, before it is allocated, `need` bytes for `what` (e.g. "the map
    of a 9000x9000 image") that the memory limit does not leave beside what
    the nets hold (as the core refuses a blob); `remedy` says what to do
    instead."""
    limit, held = _core.memory_limit(), _core.memory_in_use()
    if need > limit - held:
        advice = f": {remedy}" if remedy else ""
        raise MemoryLimitError(f"{what} would need {size_text(need)}, more than the memory "
                               f"limit of {size_text(limit)} leaves ({size_text(held)} held "
                               f"by nets; surgery.set_memory_limit){advice}")
