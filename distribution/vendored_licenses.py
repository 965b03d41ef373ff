"""Adds the licence texts of the libraries auditwheel vendored into a wheel.

    python distribution/vendored_licenses.py REPAIRED.whl OUTDIR

auditwheel copies each external shared library into the wheel's ``*.libs``
folder under a hashed name (``libglog-1a2b3c4d.so.1``); this finds the file
it came from (``ldconfig -p``), the Debian package that owns that file
(``dpkg-query -S``) and that package's copyright file, and writes it to
``*.dist-info/licenses/<package>.txt``, then repacks the wheel (``wheel
pack`` writes a fresh RECORD) into OUTDIR. A vendored library whose licence
cannot be found stops it: the wheel is not written.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import tempfile

HASHED = re.compile(r"-[0-9a-f]{8}(?=\.so)")


def system_libraries() -> dict:
    """soname -> path, as the dynamic loader's cache lists them."""
    listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True)
    found = {}
    for line in listing.stdout.splitlines()[1:]:
        name, _, path = line.strip().partition(" => ")
        if "x86-64" in name:
            found.setdefault(name.split()[0], path)
    return found


def owning_package(path: str) -> str:
    """The Debian package that installed path (merged /usr: either spelling)."""
    real = os.path.realpath(path)
    spellings = {real, path, real.removeprefix("/usr"), "/usr" + real}
    for spelling in spellings:
        query = subprocess.run(["dpkg-query", "-S", spelling], capture_output=True, text=True)
        if query.returncode == 0:
            return query.stdout.split(":")[0]
    raise SystemExit(f"{path}: no Debian package owns it, so its licence is unknown; "
                     "vendor only libraries whose licence the wheel can carry")


def licence_of(vendored: str, libraries: dict) -> tuple:
    """(package, copyright path) of a vendored library's original."""
    original = HASHED.sub("", vendored)
    soname = next((s for s in libraries if original.startswith(s)), None)
    if soname is None:
        raise SystemExit(f"{vendored}: no system library {original} (ldconfig -p)")
    package = owning_package(libraries[soname])
    copyright_file = pathlib.Path("/usr/share/doc", package, "copyright")
    if not copyright_file.is_file():
        raise SystemExit(f"{vendored}: {package} has no {copyright_file}")
    return package, copyright_file


def main(wheel: str, outdir: str) -> None:
    libraries = system_libraries()
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([sys.executable, "-m", "wheel", "unpack", "-d", scratch, wheel],
                       check=True, stdout=subprocess.DEVNULL)
        (root,) = pathlib.Path(scratch).iterdir()
        (dist_info,) = root.glob("*.dist-info")
        licenses = dist_info / "licenses"
        licenses.mkdir(exist_ok=True)
        for folder in root.glob("*.libs"):
            for library in sorted(folder.iterdir()):
                package, copyright_file = licence_of(library.name, libraries)
                (licenses / f"{package}.txt").write_bytes(copyright_file.read_bytes())
                print(f"{library.name}: {package}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "wheel", "pack", "-d", outdir, str(root)],
                       check=True, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
