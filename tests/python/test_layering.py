"""The package's import structure: each module imports only those below it
(docs/internals/architecture.md), so none is part of an import cycle and each imports alone."""

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "src" / "python" / "surgery"

# Bottom to top; a module may import only modules of a lower rank. plot and
# report draw or print what they are handed, importing nothing above errors,
# so dense can offer them as methods. memory_budget asks the limit before
# the Python side allocates; atomic_files, which every reader and writer of
# the user's files goes through, asks it before a file is read.
RANKS = {
    "_core": 0, "errors": 0,
    "memory_budget": 1, "progress": 1,
    "atomic_files": 2,
    "net": 3, "digits": 3, "map_store": 3, "pinned": 3, "boxes": 3,
    "geometry": 4, "testing": 4, "labels": 4, "detections": 4, "plot": 4,
    "rarefy": 4, "presets": 4, "pycaffe_sharing": 4,
    "convert": 5, "preprocess": 5, "report": 5, "overlay": 5, "tiles": 5, "window_labels": 5,
    "detection_ap": 5,
    "sources": 6, "tiled_forward": 6, "pycaffe_2014": 6, "loss_map": 6, "finetune_data": 6,
    "detection_picture": 6,
    "dense": 7, "pycaffe": 7,
    "demo": 8, "dask_batch": 8, "finetune": 8, "onnx_export": 8,
    "cli": 9,
    "__main__": 10,
}


def imports(module: str):
    """The package modules `module` imports, anywhere in it (function bodies
    included), except under `if TYPE_CHECKING:`, which never runs. A
    subpackage counts as one module: what its files import from the package."""
    if (PACKAGE / module).is_dir():
        files, level = sorted((PACKAGE / module).glob("*.py")), 2
    else:
        files, level = [PACKAGE / f"{module}.py"], 1
    found = set()
    for path in files:
        found |= _relative_imports(ast.parse(path.read_text()), level)
    return found


def _relative_imports(tree, level):
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            skipped.update(id(child) for child in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.ImportFrom) or node.level != level:
            continue
        if node.module:
            found.add(node.module.split(".")[0])
        else:
            found.update(alias.name for alias in node.names)
    return found


def modules():
    files = [p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"]
    packages = [p.parent.name for p in PACKAGE.glob("*/__init__.py")]
    return sorted(files + packages)


def test_every_module_has_a_rank():
    assert set(modules()) <= set(RANKS), set(modules()) - set(RANKS)


def test_no_import_cycle():
    graph = {m: imports(m) & set(modules()) for m in modules()}
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        if state.get(module) == "open":
            cycle = path[path.index(module):] + [module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        state[module] = "open"
        for target in sorted(graph[module]):
            visit(target, path + [module])
        state[module] = "done"

    for module in modules():
        visit(module, [])


def test_each_module_imports_only_modules_below_it():
    upward = [(m, t) for m in modules() for t in imports(m) if RANKS[t] >= RANKS[m] and t != "_core"]
    assert not upward, upward


@pytest.mark.parametrize("module", sorted(RANKS, key=RANKS.get))
def test_each_module_imports_alone_in_a_fresh_interpreter(module):
    run = subprocess.run([sys.executable, "-c", f"import surgery.{module}"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_the_checker_sees_a_cycle(tmp_path, monkeypatch):
    # The parser must find imports inside functions, where the old cycle was.
    (tmp_path / "a.py").write_text("def f():\n    from .b import g\n")
    (tmp_path / "b.py").write_text("from . import a\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    assert imports("a") == {"b"} and imports("b") == {"a"}
