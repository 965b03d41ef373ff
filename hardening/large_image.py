"""A synthetic TIFF too large to run whole, through LeNet, in a child
process whose memory limit is below what the whole forward needs: the
forward must tile on its own, read the TIFF a region at a time and write
the map to Zarr, with a peak resident memory (VmHWM) well under the whole
forward's need.

    .venv/bin/python hardening/large_image.py --side 20000 --limit-mib 1024

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
    import json, sys
    import surgery
    path, out, prototxt, weights, limit, side = sys.argv[1:7]
    net = surgery.fully_convolutionalize(prototxt, weights).net
    surgery.set_memory_limit(int(limit))
    try:
        net.reshape(data=(1, 1, int(side), int(side)))
        whole_refused = False
    except surgery.ShapeError:  # over the limit, or past Caffe's blob size
        whole_refused = True
    dense = net.dense_forward(path, out=out)
    with open("/proc/self/status") as f:
        peak = [int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM")][0]
    print(json.dumps({"peak": peak, "map": list(dense.scores.shape), "tiles": len(dense.tiles),
                      "tile": list(dense.tiles.tile), "whole_refused": whole_refused}))
""")


def write_tiff(path: pathlib.Path, side: int, seed: int = 0) -> None:
    """A side x side uint8 tiled TIFF of noise, written a tile at a time (so
    this process never holds the image either)."""
    import tifffile
    rng = np.random.default_rng(seed)
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        def tiles():
            for _ in range((-(-side // 256)) ** 2):
                yield rng.integers(0, 256, (256, 256), dtype=np.uint8)
        tif.write(tiles(), shape=(side, side), dtype=np.uint8, tile=(256, 256))


def run(lenet, folder: pathlib.Path, side: int, limit: int, timeout: float = 3600) -> dict:
    """The child's report (peak, map shape, tiles, whole_refused); the map
    is left in folder/large.zarr, the image in folder/large.tif."""
    path, out = folder / "large.tif", folder / "large.zarr"
    write_tiff(path, side)
    child = subprocess.run([sys.executable, "-c", CHILD, str(path), str(out), str(lenet[0]),
                            str(lenet[1]), str(limit), str(side)],
                           capture_output=True, text=True, timeout=timeout)
    if child.returncode != 0:
        raise RuntimeError(f"the child failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.splitlines()[-1])


def main() -> None:
    from surgery.testing import fixtures
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=20000)
    parser.add_argument("--limit-mib", type=int, default=1024)
    args = parser.parse_args()
    folder = fixtures() / "lenet_mnist_trained"
    lenet = (folder / "lenet.prototxt", folder / "lenet_iter_10000.caffemodel")
    with tempfile.TemporaryDirectory() as tmp:
        report = run(lenet, pathlib.Path(tmp), args.side, args.limit_mib * 2**20)
    print(f"{args.side}x{args.side} TIFF, limit {args.limit_mib} MiB: whole forward refused: "
          f"{report['whole_refused']}; {report['tiles']} tiles of {report['tile']}; map "
          f"{report['map']}; peak resident {report['peak'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
