"""Run one case in a forked child, so a crash is counted, not suffered.

The parent imports surgery once; each fork starts from that state in a few
milliseconds. The child reports through a pipe and leaves with os._exit.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class Outcome:
    kind: str      # "ok", "error", "untyped", "crash", "hang"
    detail: str    # exception class, signal name, or ""
    message: str = ""


def run_isolated(case: Callable[[], object], timeout: float = 20.0) -> Outcome:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        # Whatever happens here, the child leaves by os._exit: an exception
        # while reporting (a closed pipe, seen once on a loaded GPU machine)
        # must not return into the caller, where a second pytest would run
        # the rest of the session. The parent then finds no report: a crash.
        try:
            os.setpgid(0, 0)  # its own group, so a timeout kills what it started too
            os.close(read_end)
            try:
                case()
                report = {"kind": "ok", "detail": ""}
            except BaseException as error:  # noqa: BLE001 - classifying is the point
                import surgery
                typed = isinstance(error, surgery.SurgeryError)
                report = {"kind": "error" if typed else "untyped",
                          "detail": type(error).__name__, "message": str(error)[:500]}
            with os.fdopen(write_end, "w") as out:
                out.write(json.dumps(report))
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + timeout
    chunks = []
    with os.fdopen(read_end) as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:  # the group is not made yet: the child alone
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return Outcome("hang", f"> {timeout:.0f} s")
            ready, _, _ = select.select([pipe], [], [], left)
            if ready:
                chunk = pipe.read()
                chunks.append(chunk)
                break
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return Outcome("crash", signal.Signals(os.WTERMSIG(status)).name)
    text = "".join(chunks)
    if not text:
        return Outcome("crash", f"exit {os.WEXITSTATUS(status)} without a report")
    report = json.loads(text)
    return Outcome(report["kind"], report["detail"], report.get("message", ""))
