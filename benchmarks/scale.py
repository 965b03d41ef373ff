"""Scale benchmark: many images on Dask, and one large image in tiles.
CaffeNet (full-conv, random weights), CPU.

Rows, all measured in this one run:
  serial loop          --images CaffeNet 451x451 PNGs, one process, one net (BLAS threads:
                       all cores)
  Dask, 1 worker       the same images through surgery.dask_batch.dense_images on an
                       embedded LocalCluster of 1 worker process (BLAS threads: all cores)
  Dask, N workers      ... of --workers processes, one thread each, BLAS threads
                       split (cores / workers) so the processes do not oversubscribe
  scheduler per task   the same cluster running --images empty tasks (a no-op
                       submitted per image): what Dask itself costs per task
  whole / tiled        one --large x --large image, whole forward vs tiles of each
                       --tile side (a tile redoes its overlap with its neighbours)

Images per second exclude cluster start-up (reported apart) and include
writing each map and record. The closing note estimates N machines from the
per-worker rate: N x workers x (images/s per worker), bounded by the
scheduler's tasks/s (one scheduler for all; about 1 / its per-task cost).

    .venv/bin/python benchmarks/scale.py [--images 40] [--workers 2] [--large 2000]
                                         [--tile 451 1024]

Run on a quiet machine (not while other builds or tests run).
"""

import argparse
import os
import pathlib
import tempfile
import time

import numpy as np

import surgery
from surgery.dask_batch import worker_environment
from surgery.testing import fixtures, randomize


def model(folder: pathlib.Path):
    net = surgery.Net(fixtures() / "bvlc_caffenet_full_conv" / "bvlc_caffenet_full_conv.prototxt")
    randomize(net, seed=0)
    prototxt, weights = folder / "caffenet.prototxt", folder / "caffenet.caffemodel"
    net.save(prototxt, weights)
    return prototxt, weights


def images(folder: pathlib.Path, count: int):
    from PIL import Image
    rng = np.random.default_rng(0)
    paths = []
    for k in range(count):
        path = folder / f"{k:03d}.png"
        Image.fromarray(rng.integers(0, 256, (451, 451, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def nothing(_):
    return None


def dask_rate(prototxt, weights, paths, out, workers):
    """(start-up seconds, images/s, scheduler seconds per empty task) on the
    embedded cluster dense_images makes (its thread split included)."""
    from distributed import Client
    from surgery.dask_batch import dense_images, local_cluster
    start, cluster = timed(lambda: local_cluster(workers))
    with cluster, Client(cluster) as client:
        # Load the net in every worker first: start-up, not throughput.
        dense_images(prototxt, weights, paths[:workers], out / "warm", client=client)
        seconds, summary = timed(lambda: dense_images(prototxt, weights, paths, out / "run",
                                                      client=client))
        assert len(summary.done) == len(paths), str(summary)
        empty, _ = timed(lambda: client.gather(client.map(nothing, range(len(paths)),
                                                          pure=False)))
    return start, len(paths) / seconds, empty / len(paths)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--large", type=int, default=2000)
    parser.add_argument("--tile", type=int, nargs="+", default=[451, 1024],
                        help="tile sides to time (each tile redoes its overlap: the receptive "
                             "field less one stride, 195 pixels for CaffeNet)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        prototxt, weights = model(folder)
        paths = images(folder, args.images)
        net = surgery.Net(prototxt, weights)
        surgery.dense_forward(net, str(paths[0]))
        serial, _ = timed(lambda: [surgery.dense_forward(net, str(p)) for p in paths])
        print(f"{'serial loop (1 process)':<34} {args.images / serial:8.2f} images/s")
        per_worker = None
        for workers in (1, args.workers):
            threads = int(worker_environment(workers)["SURGERY_NUM_THREADS"])
            start, rate, task = dask_rate(prototxt, weights, paths, folder / f"out{workers}",
                                          workers)
            print(f"{f'Dask, {workers} worker(s), {threads} BLAS thread(s)':<34} {rate:8.2f} "
                  f"images/s   (cluster start {start:.1f} s, scheduler {1000 * task:.2f} ms "
                  "per empty task)")
            per_worker = rate / workers
        rng = np.random.default_rng(1)
        large = rng.integers(0, 256, (args.large, args.large, 3), dtype=np.uint8)
        whole, _ = timed(lambda: surgery.dense_forward(net, large))
        print(f"{f'{args.large}x{args.large} whole':<34} {whole:8.2f} s")
        for side in args.tile:
            tiled, dense = timed(lambda side=side: surgery.dense_forward(net, large, tile=side))
            print(f"{f'{args.large}x{args.large} in {len(dense.tiles)} tiles of {side}':<34} "
                  f"{tiled:8.2f} s  ({tiled / whole:.2f}x the whole)")
        print(f"\nEstimate: N machines of {args.workers} workers give about N x "
              f"{args.workers} x {per_worker:.2f} images/s, until the one scheduler's "
              f"per-task cost ({1000 * task:.2f} ms, i.e. ~{1 / task:.0f} tasks/s) binds.")


if __name__ == "__main__":
    main()
