"""Convert benchmark: CaffeNet (random weights, 233 MB caffemodel).

Ours: surgery.fully_convolutionalize (load, surgery in place, save).
Seed: the net_surgery notebook's procedure, run through surgery.Net since
pycaffe is not a dependency: load the original net, load the hand-made
full-conv definition, copy each param with numpy .flat, save.
Each run is a fresh child process so its peak RSS is its own.

    .venv/bin/python benchmarks/convert.py [--runs 5]
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile

from surgery.testing import fixtures, random_model

FIXTURES = fixtures()

CHILD = r"""
import json, sys, time
import surgery

def peak_mb():  # VmHWM is per process image; ru_maxrss would include the parent's
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
mode, proto, model, seed_proto, out = sys.argv[1:6]
start = time.perf_counter()
if mode == "ours":
    surgery.fully_convolutionalize(proto, model, out + ".prototxt", out + ".caffemodel")
else:
    original = surgery.Net(proto, model)
    full = surgery.Net(seed_proto)
    for name, blobs in original.params.items():
        target = full.params[name + "-conv" if name.startswith("fc") else name]
        for src, dst in zip(blobs, target):
            dst.flat = src.flat
    full.save(out + ".prototxt", out + ".caffemodel")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb()}))
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        proto, model = random_model(FIXTURES / "bvlc_reference_caffenet" / "deploy.prototxt", folder)
        seed = FIXTURES / "bvlc_caffenet_full_conv" / "bvlc_caffenet_full_conv.prototxt"
        size_mb = model.stat().st_size / 2**20
        baseline = subprocess.run([sys.executable, "-c", "import surgery\nfor l in open("
                                   "'/proc/self/status'):\n if l.startswith('VmHWM:'): "
                                   "print(int(l.split()[1]) / 1024)"],
                                  check=True, capture_output=True, text=True)
        base_mb = float(baseline.stdout)
        results = {}
        for mode in ("seed", "ours"):
            runs = [json.loads(subprocess.run(
                [sys.executable, "-c", CHILD, mode, str(proto), str(model), str(seed),
                 str(folder / f"out-{mode}")], check=True, capture_output=True, text=True).stdout)
                for _ in range(args.runs)]
            results[mode] = (statistics.median(r["seconds"] for r in runs),
                             statistics.median(r["peak_mb"] for r in runs))
    seed_s, seed_mb = results["seed"]
    ours_s, ours_mb = results["ours"]
    print(f"CaffeNet caffemodel: {size_mb:.0f} MB; interpreter + surgery import: {base_mb:.0f} MB RSS")
    print(f"median of {args.runs} runs, each in a fresh process\n")
    print(f"{'procedure':<34} {'time s':>8} {'peak RSS MB':>12} {'peak / model':>13}")
    print(f"{'seed (two loads, numpy .flat, save)':<34} {seed_s:>8.2f} {seed_mb:>12.0f} "
          f"{seed_mb / size_mb:>13.2f}")
    print(f"{'surgery.fully_convolutionalize':<34} {ours_s:>8.2f} {ours_mb:>12.0f} "
          f"{ours_mb / size_mb:>13.2f}")
    print(f"\nours / seed: time {ours_s / seed_s:.2f}x, peak memory {ours_mb / seed_mb:.2f}x")


if __name__ == "__main__":
    main()
