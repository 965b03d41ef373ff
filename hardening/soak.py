"""Load, convert and run the trained LeNet many times in one process and
watch resident memory: it must settle, not grow with the count.

    .venv/bin/python hardening/soak.py --iterations 1000
"""

from __future__ import annotations

import argparse

import numpy as np

import surgery
from surgery.testing import fixtures

FIXTURES = fixtures()


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def soak(iterations: int, checkpoints=(10, 100, 1000)) -> dict:
    proto = FIXTURES / "lenet_mnist_trained" / "lenet.prototxt"
    weights = FIXTURES / "lenet_mnist_trained" / "lenet_iter_10000.caffemodel"
    canvas = np.random.default_rng(0).random((60, 60), dtype=np.float32)
    marks = {}
    for n in range(1, iterations + 1):
        net = surgery.Net(proto, weights)
        surgery.fully_convolutionalize(net)
        surgery.dense_forward(net, canvas)
        try:  # and a failure path, which must not leak either
            surgery.Net(proto, proto)
        except surgery.ParseError:
            pass
        if n in checkpoints or n == iterations:
            marks[n] = rss_mb()
    return marks


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=1000)
    args = parser.parse_args()
    marks = soak(args.iterations)
    print("load + convert + dense forward + a failed load, repeated; resident memory:")
    for n, mb in marks.items():
        print(f"  after {n:>5} iterations: {mb:7.1f} MB")
    first = min(k for k in marks if k >= 10)
    print(f"growth from iteration {first} to {args.iterations}: {marks[args.iterations] - marks[first]:+.1f} MB")


if __name__ == "__main__":
    main()
