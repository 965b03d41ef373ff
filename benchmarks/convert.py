"""Convert benchmark: CaffeNet (random weights, 233 MB caffemodel).

Three sides, each run in a fresh child process (so its peak RSS is its own),
the sides alternated run after run so that a load change on the machine
falls on all of them, and each side's fastest run kept:

- floor: what any conversion must do at least, the same bytes read into
  memory, written to a new file and fsynced;
- ours: surgery.Net(prototxt, caffemodel), fully_convolutionalize, save
  (what surgery.fully_convolutionalize does), each phase timed;
- ours, fillers: the same from a definition whose layers carry
  train_val.prototxt's Gaussian weight fillers (deploy.prototxt has none),
  which Caffe would run before the caffemodel overwrites their values;
- seed: the net_surgery notebook's procedure, run through surgery.Net since
  pycaffe is not a dependency: load the original net, load the hand-made
  full-conv definition, copy each param with numpy .flat, save.

The goal: ours within 1.5x the floor, peak RSS within the model's size +
150 MB over the interpreter's own.

    .venv/bin/python benchmarks/convert.py [--runs 7]
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

from surgery.testing import fixtures, random_model

FIXTURES = fixtures()

CHILD = r"""
import json, os, sys, time
import surgery

def peak_mb():  # VmHWM is per process image; ru_maxrss would include the parent's
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
side, proto, model, seed_proto, out = sys.argv[1:6]
phases = {}
start = time.perf_counter()
if side == "floor":
    with open(model, "rb") as source:
        data = source.read()
    fd = os.open(out + ".caffemodel", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
elif side in ("ours", "filled"):
    net = surgery.Net(proto.replace("model.prototxt", "filled.prototxt") if side == "filled"
                      else proto, model)
    phases["load"] = time.perf_counter() - start
    surgery.fully_convolutionalize(net)
    phases["surgery"] = time.perf_counter() - start - phases["load"]
    net.save(out + ".prototxt", out + ".caffemodel")
    phases["save"] = time.perf_counter() - start - phases["load"] - phases["surgery"]
else:
    original = surgery.Net(proto, model)
    full = surgery.Net(seed_proto)
    for name, blobs in original.params.items():
        target = full.params[name + "-conv" if name.startswith("fc") else name]
        for src, dst in zip(blobs, target):
            dst.flat = src.flat
    full.save(out + ".prototxt", out + ".caffemodel")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb(), "phases": phases}))
"""

SIDES = ("floor", "ours", "filled", "seed")


def with_training_fillers(proto):
    """A copy of `proto` (beside it) whose Convolution and InnerProduct layers
    carry train_val.prototxt's fillers."""
    fillers = ('weight_filler { type: "gaussian" std: 0.01 } '
               'bias_filler { type: "constant" value: 0.1 }')
    text = re.sub(r"(convolution_param|inner_product_param) \{", rf"\1 {{ {fillers}",
                  proto.read_text())
    assert text.count("gaussian") == 8
    # Its pair record names model.caffemodel still: loads check it as ours do.
    proto.with_name("filled.prototxt").write_text(text)


def run_side(side, proto, model, seed, folder):
    out = folder / f"out-{side}"
    result = json.loads(subprocess.run(
        [sys.executable, "-c", CHILD, side, str(proto), str(model), str(seed), str(out)],
        check=True, capture_output=True, text=True).stdout)
    for written in folder.glob(f"out-{side}.*"):
        written.unlink()  # each run writes a new file, as a conversion does
    return result


def interpreter_mb():
    """Peak RSS of a child that only imports surgery."""
    baseline = subprocess.run([sys.executable, "-c", "import surgery\nfor l in open("
                               "'/proc/self/status'):\n if l.startswith('VmHWM:'): "
                               "print(int(l.split()[1]) / 1024)"],
                              check=True, capture_output=True, text=True)
    return float(baseline.stdout)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        proto, model = random_model(FIXTURES / "bvlc_reference_caffenet" / "deploy.prototxt", folder)
        seed = FIXTURES / "bvlc_caffenet_full_conv" / "bvlc_caffenet_full_conv.prototxt"
        with_training_fillers(proto)
        size_mb = model.stat().st_size / 2**20
        base_mb = interpreter_mb()
        runs = {side: [] for side in SIDES}
        for _ in range(args.runs):
            for side in SIDES:
                runs[side].append(run_side(side, proto, model, seed, folder))
    best = {side: min(results, key=lambda r: r["seconds"]) for side, results in runs.items()}
    floor_s = best["floor"]["seconds"]
    print(f"CaffeNet caffemodel: {size_mb:.0f} MB; interpreter + surgery import: {base_mb:.0f} MB RSS")
    print(f"fastest of {args.runs} runs per side, sides alternated, each run a fresh process; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print(f"{'side':<40} {'time s':>7} {'/ floor':>8} {'peak RSS MB':>12} {'over import':>12}")
    labels = {"floor": "floor (read + write + fsync, same bytes)",
              "ours": "surgery.fully_convolutionalize",
              "filled": "the same, Gaussian fillers in the def.",
              "seed": "seed (two loads, numpy .flat, save)"}
    for side in SIDES:
        seconds, peak = best[side]["seconds"], max(r["peak_mb"] for r in runs[side])
        print(f"{labels[side]:<40} {seconds:>7.2f} {seconds / floor_s:>8.2f} {peak:>12.0f} "
              f"{peak - base_mb:>12.0f}")
    phases = best["ours"]["phases"]
    print("\nours, phases of its fastest run: " +
          ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items()))
    ours_peak = max(r["peak_mb"] for r in runs["ours"]) - base_mb
    print(f"goals: time {best['ours']['seconds'] / floor_s:.2f}x the floor (<= 1.5); "
          f"peak {ours_peak:.0f} MB over import (<= {size_mb + 150:.0f}, the model + 150 MB)")


if __name__ == "__main__":
    main()
