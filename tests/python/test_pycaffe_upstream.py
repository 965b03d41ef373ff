"""pycaffe's own tests, read from the sdist libcaffe is built from and run
unchanged, with `caffe` resolving to surgery.pycaffe."""
import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from surgery.testing import checkout

# The harness, not a test: what a user of Python layers and HDF5 weights does.
CONFTEST = """\
import surgery.pycaffe
surgery.pycaffe.set_load_policy(python_layers=True, io_layers=True)
surgery.pycaffe.register_as_caffe()
"""

# The sdist's python/caffe/test/ (BVLC 9b89154's, but for Windows path tweaks).
UPSTREAM_TESTS = {
    "test_coord_map": 11, "test_io": 5, "test_layer_type_list": 1, "test_net": 18,
    "test_net_spec": 3, "test_python_layer": 6, "test_python_layer_with_param_str": 2,
    "test_solver": 4,
}


def upstream():
    path = checkout() / "third_party" / "pycaffe" / "upstream.py"
    spec = importlib.util.spec_from_file_location("pycaffe_upstream", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def extract(folder, wanted):
    """The sdist's files whose path below its top folder (a list of names)
    `wanted` accepts, written at that path below `folder`; skips the test
    where the sdist is not there."""
    try:
        sdist = upstream().open_sdist()
    except FileNotFoundError as missing:
        pytest.skip(str(missing))
    written = []
    with sdist:
        for member in sdist.getmembers():
            parts = member.name.split("/")[1:]
            if member.isfile() and wanted(parts):
                target = folder.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(sdist.extractfile(member).read())
                written.append(target)
    return sorted(written)


def test_pycaffe_own_tests_pass_unchanged(tmp_path):
    found = extract(tmp_path, lambda parts: parts[:3] == ["python", "caffe", "test"]
                    and parts[-1].endswith(".py"))
    tests = tmp_path / "python" / "caffe" / "test"
    assert sorted(p.stem for p in found if p.name.startswith("test_")) == sorted(UPSTREAM_TESTS)
    (tests / "conftest.py").write_text(CONFTEST)
    (tests / "pytest.ini").write_text("[pytest]\n")
    report = tmp_path / "report.xml"
    # A child process: a Python layer or a crash must not take this one down.
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-c", str(tests / "pytest.ini"), f"--junitxml={report}", str(tests)],
                         cwd=tests, capture_output=True, text=True, timeout=600)
    cases = ElementTree.parse(report).getroot().iter("testcase")
    outcome = {}
    for case in cases:
        module = case.get("classname").split(".")[0]
        failed = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        outcome[f"{module}::{case.get('name')}"] = failed[0] if failed else "passed"
    per_module = {m: sum(1 for k in outcome if k.startswith(m + "::")) for m in UPSTREAM_TESTS}
    assert per_module == UPSTREAM_TESTS, run.stdout[-3000:]
    not_passed = {k: v for k, v in outcome.items() if v != "passed"}
    assert not not_passed, (not_passed, run.stdout[-6000:])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
