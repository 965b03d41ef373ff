"""Kill the saving process (SIGKILL) at random moments; the target must
always be the old file intact or the new one complete. Then the same for a
prototxt + caffemodel pair: the pair loads as the old pair, one new pair, or
is refused as mixed (ParseError), never a silent mix of two saves. Then a
full disk (RLIMIT_FSIZE in a child): a clear error and the old file intact.

    .venv/bin/python hardening/kill_during_save.py --trials 200
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import random
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

import surgery

NET = """name: "big"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 64 dim: 8 dim: 8 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 2048 } }
"""  # 2048 x 4096 weights: a 32 MB caffemodel

SAVER = r"""
import pathlib, sys, surgery
proto, target, ready = sys.argv[1:4]
net = surgery.Net(proto)
pathlib.Path(ready).touch()
value = 0.0
while True:
    for blobs in net.params.values():
        for blob in blobs:
            blob[...] = value
    net.save(weights=target)
    value = 1.0 - value
"""

# Alternates two nets that differ in name ("a"/"b") and weights (0/1), so a
# definition from one save beside weights from another shows.
PAIR_SAVER = r"""
import pathlib, sys, surgery
proto, target_proto, target_model, ready = sys.argv[1:5]
nets = []
for name, value in (("a", 0.0), ("b", 1.0)):
    text = pathlib.Path(proto).read_text().replace('name: "big"', f'name: "{name}"')
    path = pathlib.Path(ready).with_name(name + ".prototxt")
    path.write_text(text)
    net = surgery.Net(path)
    for blobs in net.params.values():
        for blob in blobs:
            blob[...] = value
    nets.append(net)
pathlib.Path(ready).touch()
while True:
    for net in nets:
        net.save(target_proto, target_model)
"""

FULL_DISK = r"""
import resource, sys, surgery
proto, target = sys.argv[1:3]
net = surgery.Net(proto)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
try:
    net.save(weights=target)
except surgery.FileError as error:
    print("FileError:", error)
    sys.exit(3)
"""


def write_model(folder: pathlib.Path, value: float) -> tuple:
    proto = folder / "big.prototxt"
    proto.write_text(NET)
    net = surgery.Net(proto)
    for blobs in net.params.values():
        for blob in blobs:
            blob[...] = value
    target = folder / "big.caffemodel"
    net.save(weights=target)
    return proto, target


def state_of(proto, target) -> str:
    """'old', 'new' or 'corrupt': what a reader finds at the target now."""
    try:
        net = surgery.Net(proto, target)
    except surgery.SurgeryError:
        return "corrupt"
    values = {float(v) for blobs in net.params.values() for blob in blobs for v in np.unique(blob)}
    if values == {7.0}:
        return "old"
    if len(values) == 1 and values <= {0.0, 1.0}:
        return "new"
    return "corrupt"


def kill_trials(trials: int, seed: int = 0) -> collections.Counter:
    rng = random.Random(seed)
    outcomes = collections.Counter()
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        proto, target = write_model(folder, 7.0)
        for _ in range(trials):
            write_model(folder, 7.0)
            ready = folder / "ready"
            ready.unlink(missing_ok=True)
            child = subprocess.Popen([sys.executable, "-c", SAVER, str(proto), str(target),
                                      str(ready)])
            while not ready.exists():
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.4))
            child.send_signal(signal.SIGKILL)
            child.wait()
            outcomes[state_of(proto, target)] += 1
            leftovers = list(folder.glob("big.caffemodel.tmp.*"))
            outcomes["temporary files left by the killed save"] += len(leftovers)
            for path in leftovers:
                path.unlink()
    return outcomes


def pair_state(proto, model) -> str:
    """'old', 'new', 'refused as mixed' or 'silent mix / corrupt'."""
    try:
        net = surgery.Net(proto, model)
    except surgery.ParseError as error:
        return "refused as mixed" if "mixed" in str(error) else "silent mix / corrupt"
    except surgery.SurgeryError:
        return "silent mix / corrupt"
    values = {float(v) for blobs in net.params.values() for blob in blobs for v in np.unique(blob)}
    expected = {"big": {7.0}, "a": {0.0}, "b": {1.0}}.get(net.name)
    if values != expected:
        return "silent mix / corrupt"
    return "old" if net.name == "big" else "new"


def pair_kill_trials(trials: int, seed: int = 0) -> collections.Counter:
    rng = random.Random(seed)
    outcomes = collections.Counter()
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        for _ in range(trials):
            proto = folder / "big.prototxt"
            proto.write_text(NET)
            net = surgery.Net(proto)
            for blobs in net.params.values():
                for blob in blobs:
                    blob[...] = 7.0
            target_proto, target_model = folder / "pair.prototxt", folder / "pair.caffemodel"
            for old in (target_proto, target_model):
                old.unlink(missing_ok=True)
            net.save(target_proto, target_model)
            ready = folder / "ready"
            ready.unlink(missing_ok=True)
            child = subprocess.Popen([sys.executable, "-c", PAIR_SAVER, str(proto),
                                      str(target_proto), str(target_model), str(ready)])
            while not ready.exists():
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.4))
            child.send_signal(signal.SIGKILL)
            child.wait()
            outcomes[pair_state(target_proto, target_model)] += 1
            for path in folder.glob("pair.*.tmp.*"):
                path.unlink()
    return outcomes


def full_disk_trial() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        proto, target = write_model(folder, 7.0)
        child = subprocess.run([sys.executable, "-c", FULL_DISK, str(proto), str(target)],
                               capture_output=True, text=True)
        return {"exit": child.returncode, "message": child.stdout.strip(),
                "target": state_of(proto, target),
                "temporary files left": len(list(folder.glob("big.caffemodel.tmp.*")))}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    start = time.time()
    outcomes = kill_trials(args.trials)
    print(f"kill during save: {args.trials} SIGKILLs at random moments of 32 MB saves "
          f"({time.time() - start:.0f} s)")
    for name in ("old", "new", "corrupt", "temporary files left by the killed save"):
        print(f"  {name:<42} {outcomes[name]:>5}")
    start = time.time()
    pairs = pair_kill_trials(args.trials)
    print(f"kill during a pair save: {args.trials} SIGKILLs ({time.time() - start:.0f} s)")
    for name in ("old", "new", "refused as mixed", "silent mix / corrupt"):
        print(f"  {name:<42} {pairs[name]:>5}")
    disk = full_disk_trial()
    print(f"full disk (RLIMIT_FSIZE 1 MB): exit {disk['exit']}, target {disk['target']}, "
          f"temporary files left {disk['temporary files left']}")
    print(f"  {disk['message']}")
    broken = outcomes["corrupt"] or pairs["silent mix / corrupt"] or disk["target"] != "old"
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
