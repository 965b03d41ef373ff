"""The fuzz campaign: mutated prototxts, caffemodels and API arguments, each
run in a forked child. Prints cases, successes, typed errors by kind,
untyped exceptions, crashes and hangs.

    .venv/bin/python hardening/fuzz.py --cases 10000 [--seed 1]
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import tempfile
import time
import pathlib

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import surgery  # noqa: E402,F401 - loaded once here, so each forked case starts with it
from cases import GENERATORS  # noqa: E402
from forkrun import run_isolated  # noqa: E402


def names_something(message: str) -> bool:
    """Does an error message say where: a file, a quoted layer/blob, a shape?"""
    return bool(re.search(r"case\.(prototxt|caffemodel)|'[^']+'|\d+ ?x ?\d+|\d+ (values|channels)"
                          r"|shape|size", message))


def campaign(cases: int, seed: int, timeout: float = 20.0, progress=None):
    rng = np.random.default_rng(seed)
    table = collections.Counter()
    findings = []
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        for n in range(cases):
            family, case = GENERATORS[n % len(GENERATORS)](rng, folder)
            outcome = run_isolated(case, timeout)
            table[(family, outcome.kind, outcome.detail)] += 1
            if outcome.kind == "error" and names_something(outcome.message):
                table[("named", "", "")] += 1
            if outcome.kind in ("untyped", "crash", "hang") or (
                    outcome.kind == "error" and not outcome.message.strip()):
                findings.append((n, family, outcome))
            if progress and (n + 1) % 500 == 0:
                progress(n + 1)
    return table, findings


def print_table(table, cases, seconds, out=print):
    kinds = collections.Counter()
    for (family, kind, _), count in table.items():
        if family != "named":
            kinds[kind] += count
    out(f"fuzz campaign: {cases} cases in {seconds:.0f} s, each in a forked child")
    out(f"  successes        {kinds['ok']:>6}")
    out(f"  typed errors     {kinds['error']:>6}   ({table[('named', '', '')]} name a file, "
        f"layer, blob or shape)")
    for (family, kind, detail), count in sorted(table.items()):
        if kind == "error" and family != "named":
            out(f"    {family:<11} {detail:<20} {count:>6}")
    out(f"  untyped errors   {kinds['untyped']:>6}")
    out(f"  crashes          {kinds['crash']:>6}")
    out(f"  hangs            {kinds['hang']:>6}")
    return kinds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    start = time.time()
    table, findings = campaign(args.cases, args.seed,
                               progress=lambda n: print(f"  {n} cases...", file=sys.stderr))
    kinds = print_table(table, args.cases, time.time() - start)
    for n, family, outcome in findings[:30]:
        print(f"  finding: case {n} ({family}): {outcome.kind} {outcome.detail} {outcome.message[:200]}")
    sys.exit(1 if kinds["crash"] or kinds["hang"] or kinds["untyped"] else 0)


if __name__ == "__main__":
    main()
