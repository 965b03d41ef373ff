"""Prints the libraries a wheel may take from the system, one soname a line:
the manylinux policy's list (auditwheel's own copy, for the platform tag
given) and the interpreter's own (what python and its standard extension
modules link, by ldd), plus the dynamic loader.

    TOOLS_PYTHON policy_libraries.py manylinux_2_34 /path/to/python3.11
"""

import json
import pathlib
import subprocess
import sys


def policy(name: str) -> list:
    import auditwheel.policy
    policies = json.loads((pathlib.Path(auditwheel.policy.__file__).parent
                           / "manylinux-policy.json").read_text())
    (found,) = [p for p in policies if p["name"] == name]
    return found["lib_whitelist"]


def interpreters_own(python: str) -> set:
    dynload = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('platstdlib'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    real = pathlib.Path(python).resolve()
    objects = [real, *real.parent.parent.glob("lib/libpython*.so*"),
               *pathlib.Path(dynload, "lib-dynload").glob("*.so")]
    names = set()
    for path in objects:
        listing = subprocess.run(["ldd", str(path)], capture_output=True, text=True).stdout
        names.update(line.split()[0] for line in listing.splitlines() if "=>" in line)
    return names


if __name__ == "__main__":
    tag, python = sys.argv[1:]
    for name in sorted({*policy(tag), *interpreters_own(python), "ld-linux-x86-64.so.2"}):
        print(name)
