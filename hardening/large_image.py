"""A synthetic TIFF too large to run whole, through LeNet (or CaffeNet with
random weights, --model caffenet), in a child process whose memory limit is below what the whole forward needs: the
forward must tile on its own, read the TIFF a region at a time and write
the map to Zarr, with a peak resident memory (VmHWM) well under the whole
forward's need.

    .venv/bin/python hardening/large_image.py --side 20000 --limit-mib 1024
    .venv/bin/python hardening/large_image.py --model caffenet --side 8000 --limit-mib 1024

(the issue's size: 400 MB of pixels; Caffe cannot even shape LeNet to it
whole: conv1's blob would hold 8e9 values, past 2^31 - 1; about 26 TFLOP
of LeNet, so tens of minutes on 2 cores; not run yet). CI runs it at 2048
(tests/python/test_tile_files.py): whole, 3.1 GiB by the guard's estimate;
with a 128 MiB limit, 81 tiles of 256 and a peak resident memory of 207 MiB
(measured on the shared 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

# The child: LeNet over the TIFF at the given memory limit, no tile asked for.
CHILD = textwrap.dedent("""
    import json, sys, time
    import surgery
    path, out, prototxt, weights, limit, side, channels = sys.argv[1:8]
    net = surgery.fully_convolutionalize(prototxt, weights).net
    surgery.set_memory_limit(int(limit))
    try:
        net.reshape(data=(1, int(channels), int(side), int(side)))
        whole_refused = False
    except (surgery.ShapeError, surgery.MemoryLimitError) as refusal:
        # Over the limit, or past Caffe's blob size: the message says how much.
        whole_refused = " ".join(str(refusal).split())
    start = time.perf_counter()
    dense = surgery.dense_forward(net, path, out=out)
    seconds = time.perf_counter() - start
    with open("/proc/self/status") as f:
        peak = [int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM")][0]
    print(json.dumps({"peak": peak, "map": list(dense.scores.shape), "tiles": len(dense.tiles),
                      "tile": list(dense.tiles.tile), "whole_refused": whole_refused,
                      "seconds": seconds}))
""")


def write_tiff(path: pathlib.Path, side: int, channels: int = 1, seed: int = 0) -> None:
    """A side x side uint8 tiled TIFF of noise (gray, or RGB for channels=3),
    written a tile at a time (so this process never holds the image either)."""
    import tifffile
    rng = np.random.default_rng(seed)
    bands = () if channels == 1 else (channels,)
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        def tiles():
            for _ in range((-(-side // 256)) ** 2):
                yield rng.integers(0, 256, (256, 256, *bands), dtype=np.uint8)
        tif.write(tiles(), shape=(side, side, *bands), dtype=np.uint8, tile=(256, 256),
                  photometric="minisblack" if channels == 1 else "rgb")


def run(model, folder: pathlib.Path, side: int, limit: int, channels: int = 1,
        timeout: float = 3600) -> dict:
    """The child's report (peak, map shape, tiles, whole_refused, seconds)
    for `model` (prototxt, weights); the map is left in folder/large.zarr,
    the image in folder/large.tif."""
    path, out = folder / "large.tif", folder / "large.zarr"
    write_tiff(path, side, channels)
    child = subprocess.run([sys.executable, "-c", CHILD, str(path), str(out), str(model[0]),
                            str(model[1]), str(limit), str(side), str(channels)],
                           capture_output=True, text=True, timeout=timeout)
    if child.returncode != 0:
        raise RuntimeError(f"the child failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.splitlines()[-1])


def main() -> None:
    from surgery.testing import fixtures
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=20000)
    parser.add_argument("--limit-mib", type=int, default=1024)
    parser.add_argument("--model", choices=("lenet", "caffenet"), default="lenet")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        if args.model == "lenet":
            folder = fixtures() / "lenet_mnist_trained"
            model, channels = (folder / "lenet.prototxt",
                               folder / "lenet_iter_10000.caffemodel"), 1
        else:
            from surgery.testing import random_model
            model = random_model(fixtures() / "bvlc_reference_caffenet" / "deploy.prototxt", tmp)
            channels = 3
        report = run(model, tmp, args.side, args.limit_mib * 2**20, channels)
    print(f"{args.model}, {args.side}x{args.side} TIFF, limit {args.limit_mib} MiB: whole "
          f"forward refused: {report['whole_refused']}; {report['tiles']} tiles of "
          f"{report['tile']}; map {report['map']}; {report['seconds']:.0f} s; peak resident "
          f"{report['peak'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
