"""Progress bars (tqdm) on stderr, for the runs that take long: shown only
once a run has lasted a while (``progress_delay``), and only when asked for."""

from __future__ import annotations

import math
import os
import sys
from typing import Iterable, Optional

# A run shorter than this prints nothing: a bar that flashes for a moment
# only scrolls the results away. $SURGERY_PROGRESS_DELAY (seconds) changes it.
PROGRESS_DELAY_S = 2.0


def progress_delay() -> float:
    """Seconds a run lasts before its bar shows: $SURGERY_PROGRESS_DELAY
    when it is a number >= 0, else PROGRESS_DELAY_S (a bad value costs the
    user only the default, never the run)."""
    try:
        value = float(os.environ.get("SURGERY_PROGRESS_DELAY", PROGRESS_DELAY_S))
    except ValueError:
        return PROGRESS_DELAY_S
    return value if math.isfinite(value) and value >= 0 else PROGRESS_DELAY_S


def progress_bar(iterable: Optional[Iterable] = None, *, total: Optional[int] = None,
                 unit: str, desc: Optional[str] = None, enabled: bool = True,
                 initial: int = 0):
    """A tqdm bar on stderr over `iterable` (or updated by hand from
    `initial` up to `total`), drawn only after ``progress_delay()`` and only
    if `enabled`; cleared when it closes."""
    from tqdm import tqdm
    return tqdm(iterable, total=total, initial=initial, unit=unit, desc=desc, file=sys.stderr,
                delay=progress_delay(), leave=False, disable=not enabled)


def wants_progress(quiet: bool = False) -> bool:
    """A bar for a person watching: stderr is a terminal and not --quiet."""
    return not quiet and sys.stderr.isatty()


def echo(text: str, bar=None, file=None) -> None:
    """`text` as a line on `file` (default stdout); `bar`, if it is on the
    screen, cleared first and drawn again after, so that the two do not mix
    on one terminal. (tqdm.write would also draw a bar still in its delay.)"""
    shown = bar is not None and not bar.disable and bar.last_print_t >= bar.start_t + bar.delay
    if shown:
        bar.clear()
    print(text, file=file or sys.stdout, flush=shown)
    if shown:
        bar.refresh()
