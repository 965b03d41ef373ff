"""The example scripts and every code block of README.md and docs/ run end
to end (random weights stand in for BVLC's), and the docs' tables of
fields, module ranks and error messages match the code."""

import doctest
import importlib.util
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import unittest

import numpy as np
import pytest

from conftest import fixture
from surgery.testing import random_model

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", *DOCS.rglob("*.md")])
# Pages whose blocks run CaffeNet or start Dask clusters.
SLOW_PAGES = {"README.md", "getting-started.md", "surgery.md", "finer-stride.md", "dense.md",
              "large-images.md", "threads-winograd.md", "fine-tuning.md"}
CAFFENET_WEIGHTS = "bvlc_reference_caffenet.caffemodel"
# What a fenced block may be: run (python, sh), shown (text), or run by
# markdown-exec when the site is built (the CLI reference's --help).
FENCES = {"python", "sh", "text", 'python exec="on"'}
# Commands a shell block may hold besides caffe-surgery: making folders and
# copying the workspace's files into them, as a reader would.
SHELL_COMMANDS = {"caffe-surgery", "mkdir", "cp"}


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_net_surgery_caffenet_example(tmp_path, capsys):
    proto, model = random_model(fixture("bvlc_reference_caffenet", "deploy.prototxt"), tmp_path)
    dense = load("net_surgery_caffenet").main([
        str(proto), str(model), "--image", str(fixture("caffe_example_images", "cat.jpg")),
        "--mean", str(fixture("ilsvrc_2012_mean", "ilsvrc_2012_mean.npy")),
        "--labels", str(fixture("imagenet_labels", "imagenet-classes.ethereon.txt")),
        "-o", str(tmp_path / "out")])
    assert dense.shape == (8, 8)
    assert dense.label(281) == "tabby"
    np.testing.assert_allclose(dense.scores.sum(axis=0), 1, atol=1e-4)
    printed = capsys.readouterr().out
    assert "fc6 (InnerProduct 4096x9216) -> fc6-conv" in printed and "8x8 map" in printed
    assert (tmp_path / "out" / "net_surgery_cat.png").exists()


# ---- the pages' code blocks ----

@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """The files the pages name, made once: trained LeNet, CaffeNet's
    definition, images, labels, a mean, MNIST digits and a tiled TIFF; plus
    a folder holding a `caffe-surgery` command for this interpreter."""
    tifffile = pytest.importorskip("tifffile")
    folder = tmp_path_factory.mktemp("docs_workspace")
    links = {
        "deploy.prototxt": fixture("bvlc_reference_caffenet", "deploy.prototxt"),
        "lenet.prototxt": fixture("lenet_mnist_trained", "lenet.prototxt"),
        "lenet_iter_10000.caffemodel": fixture("lenet_mnist_trained", "lenet_iter_10000.caffemodel"),
        "cat.jpg": fixture("caffe_example_images", "cat.jpg"),
        "fish-bike.jpg": fixture("caffe_example_images", "fish-bike.jpg"),
        "synset_words.txt": fixture("imagenet_labels", "imagenet-classes.ethereon.txt"),
        "ilsvrc_2012_mean.npy": fixture("ilsvrc_2012_mean", "ilsvrc_2012_mean.npy"),
    }
    for name, target in links.items():
        (folder / name).symlink_to(target)
    (folder / "digits").mkdir()
    for digit in sorted(fixture("mnist_t10k", "digits").glob("*.png")):
        (folder / "digits" / digit.name).symlink_to(digit)
    rng = np.random.default_rng(0)
    tifffile.imwrite(folder / "scene.tif", rng.integers(0, 256, (700, 900, 3), np.uint8),
                     tile=(256, 256))
    commands = tmp_path_factory.mktemp("bin")
    command = commands / "caffe-surgery"
    command.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m surgery "$@"\n')
    command.chmod(0o755)
    return folder, commands


@pytest.fixture(scope="session")
def caffenet_weights(workspace, tmp_path_factory):
    """Random weights for CaffeNet in the workspace (233 MB, seconds to make),
    under BVLC's file name."""
    folder, _ = workspace
    _, weights = random_model(folder / "deploy.prototxt", tmp_path_factory.mktemp("caffenet"))
    shutil.move(weights, folder / CAFFENET_WEIGHTS)


def run_shell(example):
    """A shell block, in bash, stopping at the first command that fails."""
    source = example.parsed
    for line in re.sub(r"\\\n", " ", source).splitlines():
        words = shlex.split(line, comments=True)
        for command in re.split(r"&&|;", " ".join(words)):
            name = command.split()[0] if command.split() else None
            assert name is None or name in SHELL_COMMANDS, (
                f"{example.path}, line {example.line}: {name!r} in a sh block; run only "
                f"{sorted(SHELL_COMMANDS)}, or mark the block <!-- skip: next \"why\" -->")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", source], capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        return (f"exit {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n"
                f"--- stderr\n{done.stderr[-4000:]}")
    return None


def parsed_page(path):
    from sybil import Sybil
    from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    sybil = Sybil(parsers=[PythonCodeBlockParser(doctest_optionflags=flags),
                           CodeBlockParser(language="sh", evaluator=run_shell),
                           SkipParser()])
    return sybil.parse(path)


def page_id(path):
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("page", [
    pytest.param(page, marks=pytest.mark.slow) if page.name in SLOW_PAGES else page
    for page in PAGES], ids=page_id)
def test_page_blocks_run(page, workspace, tmp_path, monkeypatch, request):
    """Each page's blocks, in order, in a folder of its own holding the
    workspace's files; `>>>` blocks must print what they show."""
    pytest.importorskip("sybil")
    import surgery
    if CAFFENET_WEIGHTS in page.read_text():
        request.getfixturevalue("caffenet_weights")
    files, commands = workspace
    for entry in files.iterdir():
        (tmp_path / entry.name).symlink_to(entry)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{commands}{os.pathsep}{os.environ['PATH']}")
    document = parsed_page(page)
    document.namespace["gpu"] = surgery.gpu_available()
    evaluated = []
    for example in document:
        try:
            example.evaluate()
        except unittest.SkipTest:
            pass
        evaluated.append(example.line)
    unparsed = [(start, info) for start, end, info in fenced_blocks(page)
                if info in {"python", "sh"} and not any(start <= line <= end for line in evaluated)]
    assert not unparsed, f"blocks that did not run: {unparsed}"


def fenced_blocks(page):
    """(first line, last line, info string) of each of the page's fenced blocks."""
    text = page.read_text()
    blocks = []
    for match in re.finditer(r"^```(.*)$\n(?:(?!```)[\s\S])*?^```$", text, re.MULTILINE):
        start = text.count("\n", 0, match.start()) + 1
        blocks.append((start, start + match.group(0).count("\n"), match.group(1)))
    return blocks


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_block_is_run_shown_or_built(page):
    infos = {info for _, _, info in fenced_blocks(page)}
    assert infos <= FENCES, f"{page_id(page)}: blocks of {infos - FENCES}"


# ---- the docs' tables against the code ----

def table_after(page, heading):
    """First column (backquotes stripped) of the first table after `heading`."""
    text = (DOCS / page).read_text()
    rest = text[text.index(heading):]
    rows = re.findall(r"^\| (.+?) \|", rest[rest.index("\n|"):].split("\n\n")[0], re.MULTILINE)
    return [row.strip("`") for row in rows[2:]] if rows[1].startswith("---") else rows[1:]


def test_documented_csv_and_json_fields_are_the_codes():
    from surgery.cli import COLUMNS
    assert table_after("dense.md", "### `--json` and `--csv`") == COLUMNS


def test_documented_map_metadata_is_what_a_map_holds(lenet, tmp_path):
    import surgery
    from surgery.map_store import load_map
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    surgery.dense_forward(net, np.zeros((40, 40), np.float32), out=str(tmp_path / "m.npy"))
    _, meta = load_map(str(tmp_path / "m.npy"))
    assert table_after("dense.md", "### A map on disk") == list(meta)


def test_documented_record_fields_are_the_codes():
    from surgery.dask_batch import FIELDS
    assert table_after("dense.md", "### `--out` and `dask_batch`") == list(FIELDS)


def test_documented_module_ranks_are_the_layering_tests():
    from test_layering import RANKS
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", (DOCS / "internals" / "architecture.md")
                      .read_text(), re.MULTILINE)
    documented = {m: int(rank) for rank, modules in rows for m in re.findall(r"`(\w+)`", modules)}
    assert documented == RANKS


def test_documented_cpp_folders_are_in_the_layering_tests_order():
    from test_cpp_layering import FOLDERS
    text = (DOCS / "internals" / "architecture.md").read_text()
    listed = re.findall(r"^  (\w+)/ ", text, re.MULTILINE)
    assert listed == FOLDERS


def test_troubleshooting_messages_are_the_codes():
    """Each quoted piece of a message in the table is in a source file, so
    a reworded message takes its row along."""
    sources = "".join(p.read_text(errors="replace") for p in (ROOT / "src").rglob("*")
                      if p.suffix in {".py", ".cpp", ".hpp"})
    sources = re.sub(r'"\s*\n\s*f?"', "", sources)  # C++ and Python join adjacent literals
    rows = re.findall(r"^\| (`.+?) \|", (DOCS / "troubleshooting.md").read_text(), re.MULTILINE)
    pieces = [p for row in rows for p in re.findall(r"`([^`]+)`", row)]
    assert len(pieces) > 20
    missing = [p for p in pieces if p not in sources]
    assert not missing



def test_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for target in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / target).exists(), target
