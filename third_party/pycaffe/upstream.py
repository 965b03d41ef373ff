"""Upstream pycaffe's pure-Python modules, taken from the sdist libcaffe is built from.

surgery.pycaffe is pycaffe's interface over this project's core: its own modules
(pycaffe.py, io.py, net_spec.py, ...) come from the brocolli-caffe sdist that
third_party/caffe/build.sh fetched (and checked) into its cache, installed at
build time, never copied into the repository. Their absolute imports of the
`caffe` package are rewritten to `surgery.pycaffe` line by line (as pip's
vendoring tool does), so importing them neither needs nor claims a top-level
`caffe`. caffe_pb2 is generated from the sdist's caffe.proto by the protoc
that built libcaffe, for the protobuf runtime installed today (the sdist's own
was made by protobuf 3.0's protoc).

    python upstream.py --protoc PROTOC --out DIR   # what CMake runs
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


# An import the fork dropped from BVLC's io.py, whose resize_image (so
# Transformer.preprocess of any other size, Classifier.predict) calls
# skimage's resize: put back after the line that precedes it upstream.
_RESTORED_IMPORTS = {"io": ("from scipy.ndimage import zoom\n",
                            "from skimage.transform import resize\n")}


def restore_imports(source, module):
    """`source` with the import the fork dropped from `module` put back."""
    if module not in _RESTORED_IMPORTS:
        return source
    after, line = _RESTORED_IMPORTS[module]
    if line in source:
        return source
    if after not in source:
        raise RuntimeError(f"{module}.py: no line {after!r} to restore {line!r} after")
    return source.replace(after, after + line, 1)


def install(protoc, out):
    out = Path(out)
    (out / "proto").mkdir(parents=True, exist_ok=True)
    with open_sdist() as sdist:
        for module in MODULES:
            source = member_text(sdist, f"python/caffe/{module}.py")
            source = restore_imports(source, module)
            (out / f"{module}.py").write_text(rewrite_imports(source, f"{module}.py"))
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
    args = parser.parse_args(argv)
    install(args.protoc, args.out)


if __name__ == "__main__":
    sys.exit(main())
