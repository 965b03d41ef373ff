"""Rarefaction benchmark: CaffeNet (random weights) at 451x451, batch 1, CPU.

Rows, all measured in this one run (medians of --repeat runs each), for
factor f = 2 and 4:
  dense (stride 32)          the converted net: an 8x8 map
  rarefied f (stride 32/f)   one forward of the rarefied net
  f*f shifted forwards       the brute force: the converted net on the input
                             shifted by (dy, dx) * 32/f, every dy, dx < f
                             (the maps are not interleaved here: time only)
  OpenCV f=2                 cv2.dnn on the saved f=2 files (stock layers only)
Each row also gives the ratio to the dense forward (the issue expects the
rarefied forward well under f*f) and each variant's peak resident memory,
measured in a child process of its own (VmHWM, so one variant's peak does
not hide another's). The rarefied maps are checked against surgery's own
f=2 map in OpenCV (max abs difference printed).

    .venv/bin/python benchmarks/rarefy.py [--repeat 9]
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import surgery
from surgery.testing import fixtures, random_model

SIZE = 451


def median_ms(fn, repeat):
    fn()  # allocates and reshapes
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def peak_rss_mb():
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def variant(files, kind, factor, repeat):
    """One row, run in this process: (ms, peak MB, OpenCV's distance or None)."""
    prototxt, weights = files
    x = np.random.default_rng(0).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)
    net = surgery.Net(prototxt, weights)
    if kind == "opencv":  # the files hold stock layers only (CaffeNet, f=2)
        import cv2
        cv_net = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))

        def run():
            cv_net.setInput(x)
            return cv_net.forward()
        ms = median_ms(run, repeat)
        return ms, peak_rss_mb(), float(np.abs(run() - net.forward(data=x)["prob"]).max())
    if kind == "rarefied":
        surgery.rarefy(net, factor)
        ms = median_ms(lambda: net.forward(data=x), repeat)
    elif kind == "shifted":
        step = 32 // factor
        shifted = [np.ascontiguousarray(x[:, :, dy * step:, dx * step:])
                   for dy in range(factor) for dx in range(factor)]
        ms = median_ms(lambda: [net.forward(data=s) for s in shifted], repeat)
    else:
        ms = median_ms(lambda: net.forward(data=x), repeat)
    return ms, peak_rss_mb(), None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--child", nargs=5, metavar=("PROTOTXT", "WEIGHTS", "KIND", "F", "R"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        p, w, kind, f, r = args.child
        print(json.dumps(variant((p, w), kind, int(f), int(r))))
        return
    surgery.set_log_level(2)
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        deploy = fixtures() / "bvlc_reference_caffenet" / "deploy.prototxt"
        proto, model = random_model(deploy, folder)
        dense = folder / "fc.prototxt", folder / "fc.caffemodel"
        surgery.fully_convolutionalize(proto, model, *dense)
        stock = folder / "f2.prototxt", folder / "f2.caffemodel"
        surgery.fully_convolutionalize(proto, model, *stock, factor=2)

        def run(files, kind, factor=1):
            out = subprocess.run([sys.executable, __file__, "--child", str(files[0]),
                                  str(files[1]), kind, str(factor), str(args.repeat)],
                                 capture_output=True, text=True, check=True)
            return json.loads(out.stdout.splitlines()[-1])

        base_ms, base_mb, _ = run(dense, "dense")
        print(f"CaffeNet {SIZE}x{SIZE}, batch 1, CPU; medians of {args.repeat}")
        print(f"{'row':<34}{'ms':>10}{'x dense':>10}{'peak MB':>10}")
        print(f"{'dense (stride 32, 8x8)':<34}{base_ms:>10.1f}{1:>10.2f}{base_mb:>10.0f}")
        for f in (2, 4):
            for label, kind in ((f"rarefied f={f} (stride {32 // f})", "rarefied"),
                                (f"{f * f} shifted forwards", "shifted")):
                ms, mb, _ = run(dense, kind, f)
                print(f"{label:<34}{ms:>10.1f}{ms / base_ms:>10.2f}{mb:>10.0f}")
        try:
            ms, mb, diff = run(stock, "opencv")
            print(f"{'OpenCV, f=2 stock-layer files':<34}{ms:>10.1f}{ms / base_ms:>10.2f}"
                  f"{mb:>10.0f}   max |OpenCV - surgery| = {diff:.2e}")
        except subprocess.CalledProcessError as error:
            print(f"OpenCV row skipped: {error.stderr.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
