"""Per-layer CPU profile of the converted CaffeNet (random weights) at
451x451: stock caffe::Net on our libcaffe (benchmarks/layer_profile.cpp,
none of our code), each layer timed alone, median of --repeat passes.

Two columns measured side by side in one run, in alternating blocks:
  serial     libcaffe's own loops on one thread: stock Caffe's code paths
             (im2col, pooling, LRN, ReLU serial; BLAS on all threads)
  parallel   the same loops on all threads (our recipe's patch 0009)
and, with --batch N, the same for N images in one blob (time per image).

With --gpu BINARY (benchmarks/gpu_profile, built against a CUDA libcaffe)
the profile is of a GPU forward instead: each layer with a device sync, the
host's launch time for a whole pass against the device's, and the copies.

    .venv/bin/python benchmarks/profile.py [--repeat 9] [--rounds 3] [--batch 8]
    python benchmarks/profile.py --gpu .gpu-kit/bin/gpu_profile

Needs build/test/benchmarks/layer_profile (./run.sh test builds it). Run
on a quiet machine.
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import tempfile

import surgery
from surgery.testing import checkout, fixtures, randomize


def binary() -> pathlib.Path:
    return checkout() / "build" / "test" / "benchmarks" / "layer_profile"


def profile(files, batch, repeat, caffe_threads):
    """{layer: (type, ms)} and the whole pass (ms) from one run of the binary."""
    threads = str(surgery.num_threads())
    run = subprocess.run([str(binary()), *map(str, files), str(batch), "451", "451",
                          str(repeat), str(caffe_threads)], capture_output=True, text=True,
                         check=True, env={**os.environ, "OPENBLAS_NUM_THREADS": threads})
    rows = [line.split("\t") for line in run.stdout.splitlines()]
    return {name: (kind, float(ms)) for name, kind, ms in rows}


def side_by_side(files, batch, repeat, rounds):
    """{column: {layer: (type, median ms)}}, the columns' runs alternated."""
    runs = {"serial": [], "parallel": []}
    for r in range(rounds):
        order = [("serial", 1), ("parallel", 0)]
        for column, threads in (order if r % 2 == 0 else order[::-1]):
            runs[column].append(profile(files, batch, repeat, threads))
    return {column: {name: (found[0][name][0],
                            statistics.median(f[name][1] for f in found) / batch)
                     for name in found[0]}
            for column, found in runs.items()}


def table(columns, batch):
    serial, parallel = columns["serial"], columns["parallel"]
    total_serial, total_parallel = serial["total"][1], parallel["total"][1]
    per = " per image" if batch > 1 else ""
    print(f"\nbatch {batch}, ms{per} (median), share of the serial pass")
    print(f"{'layer':<12}{'type':<14}{'serial':>9}{'share':>7}{'parallel':>10}{'x':>7}")
    for name, (kind, ms) in serial.items():
        if name == "total":
            continue
        faster = ms / parallel[name][1] if parallel[name][1] > 0 else float("nan")
        print(f"{name:<12}{kind:<14}{ms:9.2f}{100 * ms / total_serial:6.0f}%"
              f"{parallel[name][1]:10.2f}{faster:7.2f}")
    print(f"{'whole pass':<26}{total_serial:9.2f}{'':7}{total_parallel:10.2f}"
          f"{total_serial / total_parallel:7.2f}")


def gpu_profile(gpu_binary, files, repeat, tf32):
    """{layer: (type, ms)}, {whole-pass row: ms}, {copy: (bytes, ms)}."""
    run = subprocess.run([str(gpu_binary), *map(str, files), "451", "451", str(repeat)]
                         + (["tf32"] if tf32 else []), capture_output=True, text=True, check=True)
    rows = [line.split("\t") for line in run.stdout.splitlines()]
    copies = {name: (int(size), float(ms)) for name, size, ms in rows
              if name.startswith(("h2d", "d2h"))}
    layers = {name: (kind, float(ms)) for name, kind, ms in rows
              if kind != "-" and name not in copies}
    whole = {name: float(ms) for name, kind, ms in rows if kind == "-"}
    return layers, whole, copies


def gpu_table(gpu_binary, files, repeat):
    """Float and TF32 side by side, one binary run each."""
    (layers, whole, copies), (tf32_layers, tf32_whole, _) = (
        gpu_profile(gpu_binary, files, repeat, tf32) for tf32 in (False, True))
    print(f"\nGPU, batch 1, ms (median of {repeat}), each layer alone with a device sync")
    print(f"{'layer':<12}{'type':<14}{'float':>9}{'TF32':>9}")
    for name, (kind, ms) in layers.items():
        print(f"{name:<12}{kind:<14}{ms:9.3f}{tf32_layers[name][1]:9.3f}")
    print(f"{'sum of layers':<26}{sum(ms for _, ms in layers.values()):9.3f}"
          f"{sum(ms for _, ms in tf32_layers.values()):9.3f}")
    for label, row in (("launch (host)", "enqueue"), ("launch and wait", "forward"),
                       ("device (events)", "device")):
        print(f"{'whole: ' + label:<26}{whole[row]:9.3f}{tf32_whole[row]:9.3f}")
    for name, (size, ms) in copies.items():
        print(f"copy {name:<11}{size / 2**20:6.2f} MiB {ms:8.3f} ms ({size / ms / 1e6:.1f} GB/s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=0, help="also profile N images in a blob")
    parser.add_argument("--gpu", type=pathlib.Path, help="the gpu_profile binary: a GPU profile")
    args = parser.parse_args()
    if not args.gpu and not binary().exists():
        raise SystemExit(f"{binary()} not built: run ./run.sh test first")
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        net = surgery.Net(fixtures() / "bvlc_reference_caffenet" / "deploy.prototxt")
        randomize(net)
        net.fully_convolutionalize()
        files = folder / "fc.prototxt", folder / "fc.caffemodel"
        net.save(*files)
        if args.gpu:
            gpu_table(args.gpu, files, args.repeat)
            return
        print(f"CaffeNet converted, random weights, 451x451; {surgery.num_threads()} threads "
              f"(BLAS and, in the parallel column, libcaffe's loops)")
        for batch in [1] + ([args.batch] if args.batch > 1 else []):
            table(side_by_side(files, batch, args.repeat, args.rounds), batch)


if __name__ == "__main__":
    main()
