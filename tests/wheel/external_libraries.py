"""Fails unless `auditwheel show --json` found that the wheel needs no
library outside the manylinux policy's list and that its symbol versions
allow the platform tag it carries.

    TOOLS_PYTHON external_libraries.py SHOW.json manylinux_2_34
"""

import json
import re
import sys


def glibc(tag: str) -> tuple:
    return tuple(map(int, re.match(r"manylinux_(\d+)_(\d+)", tag).groups()))


def main(show_file: str, tag: str) -> int:
    show = json.load(open(show_file))
    problems = []
    if show["external_libs"]:
        problems.append(f"needs libraries outside the {tag} policy: "
                        + ", ".join(sorted(show["external_libs"])))
    if glibc(show["sym_tag"]) > glibc(tag):
        problems.append(f"its symbol versions need {show['sym_tag']}, newer than {tag}")
    if not show["overall_tag"].startswith("manylinux_"):
        problems.append(f"it fits no manylinux policy ({show['overall_tag']})")
    print(f"{show['wheel']}: fits {show['overall_tag']}; libraries outside the policy: "
          f"{', '.join(sorted(show['external_libs'])) or 'none'}", file=sys.stderr)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
