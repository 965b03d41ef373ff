"""The C++ core's include structure: src/cpp/surgery is split into folders by
layer (docs/internals/architecture.md), and a file includes only files of its own folder or
of folders below it, so the folders read bottom to top and none is part of an
include cycle. The twin of test_layering.py, which checks the same of the
Python package's imports."""

import pathlib
import re

import pytest

CORE = pathlib.Path(__file__).resolve().parents[2] / "src" / "cpp" / "surgery"

# Bottom to top; a file may include files of its own folder or of a lower one.
# layers sits below definition because geometry reads pooling windows with
# DilatedPooling's pooling_axis; kernels above it because the Winograd layer
# takes its windows from geometry's conv_window.
FOLDERS = ["base", "files", "layers", "definition", "kernels", "runtime", "edit", "train"]

INCLUDE = re.compile(r'^\s*#\s*include\s*"surgery/([^"]+)"', re.MULTILINE)


def sources(core):
    """Every C++ source of the core, as paths relative to it ("base/errors.hpp")."""
    return sorted(p.relative_to(core).as_posix() for p in core.rglob("*")
                  if p.suffix in {".hpp", ".cpp", ".cu"})


def includes(core, source):
    """The core files `source` includes, as paths relative to the core."""
    return INCLUDE.findall((core / source).read_text())


def folder(source):
    return source.split("/")[0]


def misplaced(core):
    """Sources outside a ranked folder (a new folder must be given its rank)."""
    return [s for s in sources(core) if s.count("/") != 1 or folder(s) not in FOLDERS]


def dangling(core):
    """(source, include) pairs naming no file of the core: a stale path, which
    the checks below would otherwise rank as if it existed."""
    known = set(sources(core))
    return [(s, t) for s in sources(core) for t in includes(core, s) if t not in known]


def upward(core):
    """(source, include) pairs where a file includes one from a higher folder."""
    rank = {name: i for i, name in enumerate(FOLDERS)}
    return [(s, t) for s in sources(core) if folder(s) in rank for t in includes(core, s)
            if rank.get(folder(t), len(FOLDERS)) > rank[folder(s)]]


def cycle(core):
    """One include cycle between files, as a list of paths, or None."""
    graph = {s: includes(core, s) for s in sources(core)}
    state = {}

    def visit(source, path):
        if state.get(source) == "done":
            return None
        if state.get(source) == "open":
            return path[path.index(source):] + [source]
        state[source] = "open"
        for target in graph.get(source, []):
            found = visit(target, path + [source])
            if found:
                return found
        state[source] = "done"
        return None

    for source in graph:
        found = visit(source, [])
        if found:
            return found
    return None


def test_every_source_is_in_a_ranked_folder():
    assert sources(CORE), CORE
    assert not misplaced(CORE)


def test_every_include_names_a_file_of_the_core():
    assert not dangling(CORE)


def test_each_file_includes_only_its_folder_or_folders_below():
    assert not upward(CORE)


def test_no_include_cycle():
    assert cycle(CORE) is None


@pytest.fixture
def planted(tmp_path):
    """A small core laid out like the real one, free of faults."""
    def write(source, *targets):
        (tmp_path / source).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / source).write_text("".join(f'#include "surgery/{t}"\n' for t in targets))
    write("base/errors.hpp")
    write("files/atomic_file.hpp", "base/errors.hpp")
    write("runtime/net.hpp", "files/atomic_file.hpp")
    write("runtime/net.cpp", "runtime/net.hpp", "base/errors.hpp")
    return tmp_path, write


def test_the_checker_passes_a_clean_core(planted):
    core, _ = planted
    assert not misplaced(core) and not dangling(core) and not upward(core)
    assert cycle(core) is None


def test_the_checker_sees_an_upward_include(planted):
    core, write = planted
    write("files/atomic_file.hpp", "base/errors.hpp", "runtime/net.hpp")
    assert upward(core) == [("files/atomic_file.hpp", "runtime/net.hpp")]


def test_the_checker_sees_a_cycle_within_a_folder(planted):
    core, write = planted
    write("runtime/device.hpp", "runtime/net.hpp")
    write("runtime/net.hpp", "runtime/device.hpp")
    assert cycle(core) == ["runtime/device.hpp", "runtime/net.hpp", "runtime/device.hpp"]


def test_the_checker_sees_a_stray_file_and_a_stale_include(planted):
    core, write = planted
    write("stray.hpp")
    write("widgets/knob.hpp")
    write("base/logging.hpp", "base/gone.hpp")
    assert misplaced(core) == ["stray.hpp", "widgets/knob.hpp"]
    assert dangling(core) == [("base/logging.hpp", "base/gone.hpp")]
