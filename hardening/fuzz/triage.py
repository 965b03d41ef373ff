"""Replays fuzz inputs through a target and names what each triggers, so a
crash found again can be told from a new one.

    python3 hardening/fuzz/triage.py build/fuzz/hardening/fuzz/fuzz_prototxt FILE...

Prints one line per file: the file, then its signature ("ok" when it runs
clean), e.g. "SEGV in caffe::UpsampleLayer<float>::Reshape". A signature is
the kind the sanitizer or libFuzzer reported and the first stack frame that
is neither a runtime (sanitizer, libFuzzer, C/C++ library) nor the harness;
function names, not line numbers, so it survives unrelated edits. For the
Python targets, an uncaught exception is named by its class and the last
frame of the package it left ("uncaught RecursionError in batch.py:read_record").
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

# Frames that say where the report was raised, not where the bug is.
RUNTIME = re.compile(
    r"^(__sanitizer|__asan|__ubsan|__lsan|__interceptor|__cxa|__gxx|__gnu_cxx|__libc|"
    r"fuzzer::|LLVMFuzzer|std::|operator new|operator delete|malloc|calloc|realloc|free|"
    r"abort|raise|gsignal|__GI_|_Unwind|caffe_check::|fuzz::|"
    r"\(anonymous namespace\)::state_of|__clang_call_terminate|"
    r"google::LogMessage|void std::|"
    # CPython's and numpy's allocators: the caller is where the size came from.
    r"_?PyObject_(Malloc|Calloc|Realloc)|_?PyMem_|PyDataMem_|default_(malloc|calloc|realloc)|"
    r"_?PyBytes_(FromSize|FromStringAndSize|Resize)|PyBytes_FromStringAndSize|"
    r"_?npy_alloc_cache)")
FRAME = re.compile(r"^\s*#\d+ 0x[0-9a-f]+ in (.+?) (/\S+|\(\S+\))")
KIND = [
    # ASan's summary names the kind in one word; its first line does not
    # always ("requested allocation size...", "out of memory: ...").
    (re.compile(r"SUMMARY: AddressSanitizer: (\S+)"), None),
    (re.compile(r"ERROR: AddressSanitizer: (\S+)"), None),
    (re.compile(r"runtime error: (.+?)(?: of type| for type|$)"), "ubsan: "),
    (re.compile(r"ERROR: libFuzzer: (out-of-memory|timeout|deadly signal|malloc limit)"), None),
    (re.compile(r"refused surgery changed the net"), None),
    (re.compile(r"terminate called after throwing an instance of '([^']+)'"), "uncaught "),
    # atheris (the Python targets): the exception's class on the line after;
    # for the harness's own assertions, which contract was broken too.
    (re.compile(r"=== Uncaught Python exception: ===\s*\n\s*(AssertionError: [^\n]*)"),
     "uncaught "),
    (re.compile(r"=== Uncaught Python exception: ===\s*\n\s*([\w.]+)"), "uncaught "),
]
PY_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+, in (\S+)')
PY_TRACEBACK = "Traceback (most recent call last):"
TIMEOUT_S = 60


def function_name(frame: str) -> str:
    """'caffe::Foo<float>::Bar(int, float) const' -> 'caffe::Foo<float>::Bar'."""
    depth, out = 0, []
    for ch in frame:
        if ch == "(" and depth == 0 and out:
            break
        depth += ch == "<"
        depth -= ch == ">"
        out.append(ch)
    return "".join(out).strip()


def signature(report: str) -> str:
    kind = ""
    for pattern, prefix in KIND:
        m = pattern.search(report)
        if m:
            kind = (prefix or "") + (m.group(1) if m.groups() else m.group(0))
            kind = re.sub(r"-?\d+", "N", kind)  # values in a message vary by input
            break
    where = python_frame(report) or native_frame(report)
    return f"{kind or 'crash'} in {where or '?'}"


def native_frame(report: str) -> str:
    """The first frame of the report's stack that is not a runtime's."""
    for line in report.splitlines():
        m = FRAME.match(line)
        if m and not RUNTIME.match(m.group(1)) and "libc.so" not in m.group(2) \
                and "libstdc++" not in m.group(2):
            return function_name(m.group(1))
    return ""


def python_frame(report: str) -> str:
    """Where a Python exception left surgery's code ("batch.py:read_record"):
    the deepest frame of the last traceback in the package, else its deepest
    frame (an assertion of the harness); "" when the report has none."""
    if PY_TRACEBACK not in report:
        return ""
    last = report.rsplit(PY_TRACEBACK, 1)[1].splitlines()
    frames = [m.groups() for m in map(PY_FRAME.match, last) if m]
    ours = [f for f in frames if f"{os.sep}surgery{os.sep}" in f[0]]
    for path, function in reversed(ours or frames):
        return f"{os.path.basename(path)}:{function}"
    return ""


def replay(binary: str, path: str, **env: str) -> str:
    """The signature of what `path` triggers in `binary` ("ok": nothing)."""
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:symbolize=1",
               UBSAN_OPTIONS="print_stacktrace=1", **env)
    try:
        done = subprocess.run([binary, "-rss_limit_mb=2048", "-malloc_limit_mb=320",
                               "-timeout=25", path],
                              capture_output=True, text=True, errors="replace",
                              timeout=TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return "timeout in ?"
    if done.returncode == 0:
        return "ok"
    return signature(done.stderr + done.stdout)


def triage(binary: str, path: str) -> str:
    """replay's signature; for a Python target whose native stack says
    nothing (an allocation ASan refused, from code built without frame
    pointers), where the same input fails without ASan's runtime: the
    allocation then ends in Python's MemoryError and its traceback."""
    found = replay(binary, path)
    if found.endswith(" in ?") and preloads(binary):
        plain = replay(binary, path, SURGERY_FUZZ_PRELOAD="")
        if not plain.endswith(" in ?") and plain != "ok":
            found = f"{found[:-1]}{plain.rsplit(' in ', 1)[1]}"
    return found


def preloads(binary: str) -> bool:
    """Whether `binary` is one of run.sh's Python launchers, which preload
    ASan's runtime unless SURGERY_FUZZ_PRELOAD says otherwise."""
    with open(binary, "rb") as f:
        return b"SURGERY_FUZZ_PRELOAD" in f.read(4096)


def main() -> int:
    binary, paths = sys.argv[1], sys.argv[2:]
    for path in paths:
        print(f"{path}\t{triage(binary, path)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
