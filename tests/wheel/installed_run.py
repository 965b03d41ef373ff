"""The wheel check's run inside an installation (tests/wheel/check_wheel.sh).

    python installed_run.py MAP.npy [ALLOWED]

Saves the demo's dense map to MAP.npy: the digit classifier the demo trains
(cached), made fully convolutional, run over the demo's canvas. The check
compares an installed wheel's map with a source build's, bit for bit.

With ALLOWED (a file of sonames a wheel may take from the system: the
manylinux policy's and the interpreter's own), it then reads /proc/self/maps
and fails unless every mapped shared library is one of those, the
interpreter's own files, or lies inside the installed packages (ours, and
the wheels it depends on) — and ours, libcaffe and _core, come from inside
the package itself.
"""

import pathlib
import sys
import sysconfig

import numpy as np

import surgery
from surgery import _core, demo, digits
from surgery.convert import fully_convolutionalize
from surgery.dense import dense_forward


def dense_map() -> np.ndarray:
    prototxt, weights = digits.trained_model(log=lambda *_: None)
    result = fully_convolutionalize(prototxt, weights)
    _, (images, labels) = digits.split(*digits.digit_images())
    canvas, _ = demo.canvas_with_digits(images, labels)
    return dense_forward(result.net, canvas).scores


def mapped_libraries() -> set:
    paths = set()
    for line in pathlib.Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and ".so" in pathlib.Path(fields[5]).name:
            paths.add(pathlib.Path(fields[5]))
    return paths


def is_allowed(path: pathlib.Path, allowed: set) -> bool:
    """Whether the file is one of the allowed sonames (libz.so.1 is mapped
    as the file it links to, libz.so.1.2.13)."""
    return any(path.name == soname or path.name.startswith(soname + ".")
               for soname in allowed)


def strangers(allowed: set) -> list:
    """Mapped libraries that are neither allowed nor installed in this venv."""
    installed = pathlib.Path(sysconfig.get_path("platlib")).resolve()
    own = pathlib.Path(sys.base_prefix).resolve()
    return sorted(str(p) for p in mapped_libraries()
                  if not is_allowed(p, allowed)
                  and not p.resolve().is_relative_to(installed)
                  and not p.resolve().is_relative_to(own))


def main(out: str, allowed_file: str = "") -> int:
    np.save(out, dense_map())
    if not allowed_file:
        return 0
    allowed = set(pathlib.Path(allowed_file).read_text().split())
    package = pathlib.Path(surgery.__file__).resolve().parent
    caffe = [p for p in mapped_libraries() if p.name.startswith("libcaffe")]
    ours = [pathlib.Path(_core.__file__), *caffe]
    outside = [str(p) for p in ours if not p.resolve().is_relative_to(package)]
    found = strangers(allowed)
    for problem, paths in (("mapped from outside the package", outside),
                           ("not the policy's, the interpreter's or installed", found)):
        if paths:
            print(f"{problem}: {', '.join(paths)}", file=sys.stderr)
    if not caffe:
        print("libcaffe is not mapped", file=sys.stderr)
    return 1 if outside or found or not caffe else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
