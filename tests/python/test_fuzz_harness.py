"""The Python fuzz targets' rules (hardening/fuzz/python/harness.py): a
refusal by surgery's own error passes; an untyped exception, a result its
check refuses or an input changed by reading is a finding; and triage.py
names a Python finding so that a rediscovery is told from a new one. The
campaigns themselves are hardening/fuzz/run.sh's (docs/internals/testing.md, "Fuzzing")."""

import os
import pathlib
import sys
import tempfile

import pytest

from surgery.errors import FileError

FUZZ = pathlib.Path(__file__).resolve().parents[2] / "hardening" / "fuzz"
sys.path.insert(0, str(FUZZ / "python"))
sys.path.insert(0, str(FUZZ))

import harness  # noqa: E402
import triage  # noqa: E402


def no_check(result):
    pass


def surgery_fuzz_folders():
    return {name for name in os.listdir(tempfile.gettempdir())
            if name.startswith("surgery-fuzz-")}


def test_a_refusal_by_surgerys_error_passes_and_leaves_no_file():
    before = surgery_fuzz_folders()
    seen = []

    def refuse(path):
        seen.append(pathlib.Path(path).read_bytes())
        raise FileError(f"cannot read {path!r}")

    harness.run_one(refuse, no_check, ".txt", b"cat\ndog\n")
    assert seen == [b"cat\ndog\n"]  # the reader got the input as a file
    assert surgery_fuzz_folders() == before


def test_an_untyped_exception_is_a_finding():
    def leaks(path):
        return [].get("image")  # what a record that is a JSON list did

    with pytest.raises(AttributeError):
        harness.run_one(leaks, no_check, ".json", b"[]")


def fuzz_image_check():
    import fuzz_image
    return fuzz_image.check


def test_a_result_outside_the_contract_is_a_finding():
    import numpy as np
    four_d = np.zeros((2, 3, 4, 3), np.float32)  # frames stacked
    with pytest.raises(AssertionError, match="shape"):
        harness.run_one(lambda path: four_d, fuzz_image_check(), ".gif", b"GIF89a")


def test_an_input_changed_by_reading_is_a_finding():
    def truncates(path):
        open(path, "wb").close()
        return []

    with pytest.raises(AssertionError, match="changed the input"):
        harness.run_one(truncates, no_check, ".txt", b"cat\n")


def test_an_array_over_the_memory_limit_or_of_complex_numbers_is_a_finding():
    import numpy as np
    big = np.broadcast_to(np.float32(0), (harness.MEMORY_LIMIT // 4 + 1,))
    with pytest.raises(AssertionError, match="memory limit"):
        harness.check_array(big, "load_mean")
    with pytest.raises(AssertionError, match="complex"):
        harness.check_array(np.ones(3, np.complex64), "load_mean")
    assert harness.check_array(np.zeros(3), "load_mean").shape == (3,)


ATHERIS_REPORT = """\
INFO: Running with entropic power schedule (0xFF, 100).
Running: crash-0123

 === Uncaught Python exception: ===
RecursionError: maximum recursion depth exceeded while decoding a JSON array
Traceback (most recent call last):
  File "/repo/hardening/fuzz/python/harness.py", line 92, in one_input
    run_one(read, check, suffix(data), data)
  File "/repo/hardening/fuzz/python/harness.py", line 112, in run_one
    result = read(path)
  File "/repo/src/python/surgery/batch.py", line 231, in read_record
    record = json.loads(data.decode("utf-8"))
  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads
    return _default_decoder.decode(s)
RecursionError: maximum recursion depth exceeded while decoding a JSON array

==11463== ERROR: libFuzzer: fuzz target exited
    #0 0x7f0fbf77005a in __sanitizer_print_stack_trace /llvm/asan_stack.cpp:87:3
    #7 0x7f0fbf294668 in Py_Exit /python/Python/pylifecycle.c:2944:5
"""


def test_triage_names_a_python_finding_by_class_and_the_packages_frame():
    assert triage.signature(ATHERIS_REPORT) == "uncaught RecursionError in batch.py:read_record"
    # Out of the package (the harness's own check): its deepest frame.
    outside = ATHERIS_REPORT.replace("/repo/src/python/surgery/batch.py", "/repo/x/y.py")
    assert triage.signature(outside) == "uncaught RecursionError in __init__.py:loads"


def test_triage_names_an_asan_report_by_its_summary():
    report = ("==1110==ERROR: AddressSanitizer: out of memory: allocator is trying to allocate "
              "0x6fc23ac000 bytes\n"
              "    #0 0x7f47c6164c7f in __interceptor_malloc /llvm/asan_malloc_linux.cpp:69:3\n"
              "    #1 0x7f47c6164c7f in PyArray_NewFromDescr_int /numpy/ctors.c:1:1\n"
              "SUMMARY: AddressSanitizer: out-of-memory /llvm/asan_malloc_linux.cpp:69:3\n")
    assert triage.signature(report) == "out-of-memory in PyArray_NewFromDescr_int"


def test_triage_tells_the_harnesss_assertions_apart():
    report = ("\n === Uncaught Python exception: ===\n"
              "AssertionError: load_image(color=True) returned shape (2, 12, 16, 3)\n"
              "Traceback (most recent call last):\n"
              '  File "/repo/hardening/fuzz/python/fuzz_image.py", line 24, in check\n')
    assert triage.signature(report) == ("uncaught AssertionError: load_image(color=True) "
                                        "returned shape (N, N, N, N) in fuzz_image.py:check")
