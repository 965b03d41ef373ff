"""Upstream pycaffe's pure-Python modules, taken from the sdist libcaffe is built from.

surgery.pycaffe is pycaffe's interface over this project's core: its own modules
(pycaffe.py, io.py, net_spec.py, ...) come from the brocolli-caffe sdist that
third_party/caffe/build.sh fetched (and checked) into its cache, installed at
build time, never copied into the repository. Their absolute imports of the
`caffe` package are rewritten to `surgery.pycaffe` line by line (as pip's
vendoring tool does), so importing them neither needs nor claims a top-level
`caffe`; a line the fork lost from BVLC's modules is put back, and a writer
that emptied its file before it had anything to write is made atomic (REPAIRS).
caffe_pb2 is generated from the sdist's caffe.proto by the protoc
that built libcaffe, for the protobuf runtime installed today (the sdist's own
was made by protobuf 3.0's protoc).

    python upstream.py --protoc PROTOC --out DIR --missing-ok   # what CMake runs

With --missing-ok, a missing sdist (a Caffe of your own, built elsewhere) is
a warning: the package is then built without surgery.pycaffe's upstream half,
and importing surgery.pycaffe says so.
"""
import argparse
import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

BUILD_SH = Path(__file__).resolve().parent.parent / "caffe" / "build.sh"
MODULES = ("pycaffe", "io", "net_spec", "coord_map", "draw", "classifier", "detector")
PACKAGE = "surgery.pycaffe"


def _recipe_value(name):
    """VERSION or SHA256 as build.sh pins them: one place for both."""
    match = re.search(rf"^readonly {name}=(\S+)$", BUILD_SH.read_text(), re.MULTILINE)
    if not match:
        raise RuntimeError(f"{BUILD_SH} has no 'readonly {name}=' line")
    return match.group(1)


def sdist_path():
    """The sdist in build.sh's cache ($CAFFE_SURGERY_CACHE, else $XDG_CACHE_HOME or ~/.cache)."""
    cache = os.environ.get("CAFFE_SURGERY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "caffe-surgery")
    return Path(cache) / "src" / f"brocolli-caffe-{_recipe_value('VERSION')}.tar.gz"


def open_sdist():
    """The sdist as a tarfile, after its sha256 is checked against build.sh's pin."""
    path = sdist_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: third_party/caffe/build.sh fetches it when it "
                                "builds libcaffe (run it, or point CAFFE_SURGERY_CACHE at its cache)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != _recipe_value("SHA256"):
        raise RuntimeError(f"{path}: sha256 {digest} is not the one third_party/caffe/build.sh pins")
    return tarfile.open(path)


def member_text(sdist, relative):
    """A text file of the sdist, by its path under the top folder."""
    top = sdist.getnames()[0].split("/")[0]
    return sdist.extractfile(f"{top}/{relative}").read().decode("utf-8")


_REWRITES = (
    # import caffe.io  ->  the submodule, and the package under the name `caffe`
    (re.compile(r"^(\s*)import caffe\.(\w+)\s*$"),
     rf"\1import {PACKAGE}.\2; import {PACKAGE} as caffe"),
    (re.compile(r"^(\s*)import caffe\s*$"), rf"\1import {PACKAGE} as caffe"),
    (re.compile(r"^(\s*)from caffe((?:\.\w+)*) import "), rf"\1from {PACKAGE}\2 import "),
)
_LEFT_OVER = re.compile(r"^\s*(import|from)\s+caffe\b")


def rewrite_imports(source, name):
    """`source` with its imports of `caffe` naming surgery.pycaffe instead, line for line."""
    lines = []
    for number, line in enumerate(source.splitlines(keepends=True), 1):
        for pattern, replacement in _REWRITES:
            line = pattern.sub(replacement, line)
        if _LEFT_OVER.match(line):
            raise RuntimeError(f"{name}:{number}: an import of caffe this script does not know: {line!r}")
        lines.append(line)
    return "".join(lines)


# Lines the fork lost from BVLC 9b89154's modules, put back (each anchor must
# be found once): io.resize_image calls skimage's resize, whose import the
# fork's io.py dropped (NameError in Classifier.predict and Detector).
REPAIRS = {
    "io": [("import skimage.io\n",
            "import skimage.io; from skimage.transform import resize  # BVLC 9b89154's import\n")],
    # open(filename, 'wb') emptied an existing picture before graphviz ran;
    # the package's outputs are whole or not at all.
    "draw": [("    with open(filename, 'wb') as fid:\n"
              "        fid.write(draw_net(caffe_net, rankdir, ext, phase, display_lrm))\n",
              "    from surgery.atomic_files import write_bytes\n"
              "    write_bytes(filename, draw_net(caffe_net, rankdir, ext, phase, display_lrm),\n"
              "                what='drawing of the net')\n")],
}


def repair(source, module):
    for anchor, replacement in REPAIRS.get(module, []):
        if source.count(anchor) != 1:
            raise RuntimeError(f"{module}.py: the line {anchor!r} to repair is not there once")
        source = source.replace(anchor, replacement)
    return source


def install(protoc, out, missing_ok=False):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        sdist = open_sdist()
    except FileNotFoundError as missing:
        if not missing_ok:
            raise
        print(f"warning: surgery.pycaffe is built without pycaffe's modules: {missing}",
              file=sys.stderr)
        return
    (out / "proto").mkdir(exist_ok=True)
    with sdist:
        for module in MODULES:
            source = member_text(sdist, f"python/caffe/{module}.py")
            source = repair(rewrite_imports(source, f"{module}.py"), module)
            (out / f"{module}.py").write_text(source)
        proto = member_text(sdist, "src/caffe/proto/caffe.proto")
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "caffe.proto").write_text(proto)
        subprocess.run([protoc, f"--python_out={out / 'proto'}", f"-I{folder}",
                        os.path.join(folder, "caffe.proto")], check=True)
    (out / "proto" / "__init__.py").write_text("")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protoc", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--missing-ok", action="store_true",
                        help="warn, and install nothing, if the sdist is not in the cache")
    args = parser.parse_args(argv)
    install(args.protoc, args.out, args.missing_ok)


if __name__ == "__main__":
    sys.exit(main())
