"""What the Python fuzz targets share: libFuzzer (through atheris) feeds
bytes to one of the package's readers of user-named files, as a file on
disk, and anything but a checked result or one of surgery's own errors is
a finding.

A target is a small script that names the reader, the checks of its result
and the file's suffix, and calls ``fuzz``:

    python hardening/fuzz/python/fuzz_labels.py [libFuzzer flags] [CORPUS or FILE...]

(``hardening/fuzz/run.sh`` runs them with ASan's runtime preloaded; see
docs/internals/testing.md's "Fuzzing" for what that does and does not check.)

A finding is, for each input:
- an exception that is not a ``surgery.SurgeryError`` (AttributeError,
  RecursionError, a bare MemoryError, numpy's or Pillow's own errors):
  a user would see a traceback instead of a message naming the file;
- a result the reader's contract does not allow (the target's ``check``);
- the input file changed by reading it;
- through libFuzzer's flags: an input that runs longer than -timeout, one
  allocation above -malloc_limit_mb (the memory limit set here is below it,
  so such an allocation was never checked against the limit), a process
  above -rss_limit_mb, or a crash of the process.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
import warnings
from typing import Callable, Iterable, Sequence

# surgery's memory limit in the targets, as in the C++ ones
# (targets/harness.cpp): run.sh's -malloc_limit_mb is a little above it.
MEMORY_LIMIT = 256 << 20


def instrument(prefixes: Iterable[str]) -> int:
    """Adds libFuzzer's coverage to every Python function of the loaded
    modules named by `prefixes` (a module and its submodules); returns how
    many. Done after import rather than by atheris.instrument_imports,
    which takes whole top-level packages (all of numpy for numpy.lib.format)
    and misses what was imported before it."""
    import atheris
    prefixes = tuple(prefixes)
    done = 0
    for name, module in list(sys.modules.items()):
        if module is None or not any(name == p or name.startswith(p + ".") for p in prefixes):
            continue
        for function in functions_of(module):
            try:
                atheris.instrument_func(function)
                done += 1
            except Exception:  # noqa: BLE001 - a function atheris cannot patch stays as it is
                pass
    return done


def functions_of(module) -> Iterable[Callable]:
    """The Python functions defined in `module`: its own and its classes' methods."""
    import types
    for value in list(vars(module).values()):
        if isinstance(value, types.FunctionType) and value.__module__ == module.__name__:
            yield value
        elif isinstance(value, type) and value.__module__ == module.__name__:
            for member in list(vars(value).values()):
                member = getattr(member, "__func__", member)  # static and class methods
                if isinstance(member, property):
                    member = member.fget
                if isinstance(member, types.FunctionType):
                    yield member


def fuzz(read: Callable[[str], object], check: Callable[[object], None],
         suffix: Callable[[bytes], str], instrumented: Sequence[str]) -> None:
    """Runs libFuzzer on `read(path)`: each input is written to a file named
    with `suffix(data)`, read with surgery's memory limit at MEMORY_LIMIT,
    and its result passed to `check`, which raises AssertionError when the
    reader's contract is broken. `instrumented`: module prefixes whose
    Python code gives coverage (imported before this is called)."""
    import atheris
    import surgery

    surgery.set_memory_limit(MEMORY_LIMIT)
    # Pillow and numpy warn about damaged files; the outcome is what counts.
    warnings.simplefilter("ignore")
    print(f"INFO: {instrument(instrumented)} Python functions instrumented", file=sys.stderr)

    def one_input(data: bytes) -> None:
        run_one(read, check, suffix(data), data)

    atheris.Setup(libfuzzer_argv(sys.argv), one_input)
    atheris.Fuzz()


def run_one(read: Callable[[str], object], check: Callable[[object], None], suffix: str,
            data: bytes) -> None:
    """One input: `data` as a file named *`suffix`, read by `read`; returns
    when the reader refused it with surgery's own error or gave a result
    that `check` accepts, and left the file as it was. Anything else raises:
    to libFuzzer, a finding."""
    from surgery.errors import SurgeryError
    # A folder of its own per input, removed after: libFuzzer's fork mode
    # starts many processes, and none may leave files behind.
    folder = tempfile.mkdtemp(prefix="surgery-fuzz-")
    path = os.path.join(folder, "input" + suffix)
    with open(path, "wb") as f:
        f.write(data)
    try:
        result = read(path)
    except SurgeryError:
        pass  # refused with the package's own error: as it should be
    else:
        check(result)
    finally:
        with open(path, "rb") as f:
            assert f.read() == data, "reading changed the input file"
        os.unlink(path)
        os.rmdir(folder)


def libfuzzer_argv(argv: Sequence[str]) -> list:
    """sys.argv for libFuzzer, whose -fork and -merge modes run argv[0]
    again through the shell: the interpreter and the script, so the child
    is this target under this Python (and the environment, LD_PRELOAD
    included, is inherited)."""
    script = os.path.abspath(argv[0])
    return [f"{shlex.quote(sys.executable)} {shlex.quote(script)}", *argv[1:]]


def check_array(result, what: str):
    """`result` must be a numpy array of real numbers (pixels and means have
    no imaginary part) that fits the memory limit."""
    import numpy as np
    assert isinstance(result, np.ndarray), f"{what} returned {type(result).__name__}"
    assert np.issubdtype(result.dtype, np.integer) or np.issubdtype(result.dtype, np.floating), \
        f"{what} returned dtype {result.dtype}"
    assert result.nbytes <= MEMORY_LIMIT, \
        f"{what} returned {result.nbytes} bytes, above the memory limit {MEMORY_LIMIT}"
    return result


def skip(target: str, why: str) -> None:
    """Ends a target that cannot run on this tree, saying so (run.sh shows it)."""
    print(f"fuzz target {target} skipped: {why}", file=sys.stderr)
    sys.exit(0)
