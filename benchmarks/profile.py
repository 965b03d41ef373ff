"""Per-layer CPU profile of the converted CaffeNet (random weights) at
451x451: stock caffe::Net on our libcaffe (benchmarks/layer_profile.cpp,
none of our code), each layer timed alone, median of --repeat passes.

Two columns measured side by side in one run, in alternating blocks:
  serial     libcaffe's own loops on one thread, as stock Caffe runs them
             (im2col, pooling, LRN, ReLU, and patch 0012's streamed GEMM
             of the fc convolutions; BLAS on all threads)
  parallel   the same loops on all threads (our recipe's patch 0009)
and, with --batch N, the same for N images in one blob (time per image).
With --before LIBDIR the columns are another libcaffe (an earlier recipe's
build) and ours instead, both on all threads: a recipe change's profile
before and after, measured side by side.
With --winograd the columns are our own surgery.Net (Net.layer_times) with
convolution "caffe" and "winograd", on all threads.
With --onnx the columns are our surgery.Net (Net.layer_times; its algorithm
chosen by --convolution, default "caffe") and ONNX
Runtime running the same net exported to ONNX (surgery.export_onnx), timed
by its own profiler (SessionOptions.enable_profiling), both on
surgery.num_threads() threads: per layer (ORT's nodes carry our layer
names; it fuses each ReLU into its convolution and adds layout reorders)
and summed per type.

With --gpu BINARY (benchmarks/gpu_profile, built against a CUDA libcaffe)
the profile is of a GPU forward instead: each layer with a device sync, the
host's launch time for a whole pass against the device's (and for all
layers but the last, whose Softmax copy waits for the device), and the copies.

    .venv/bin/python benchmarks/profile.py [--repeat 9] [--rounds 3] [--batch 8]
        [--before ~/.cache/caffe-surgery/libcaffe/<an earlier recipe>/lib | --winograd |
         --onnx [--convolution fastest]]
    python benchmarks/profile.py --gpu .gpu-kit/bin/gpu_profile [--kernels .gpu-kit/bin/plain_caffe]

Needs build/test/benchmarks/layer_profile (./run.sh test builds it). Run
on a quiet machine.
"""

import argparse
import csv
import json
import os
import pathlib
import statistics
import subprocess
import tempfile
import time

import numpy as np

import surgery
from surgery.testing import checkout, fixtures, randomize


def binary() -> pathlib.Path:
    return checkout() / "build" / "test" / "benchmarks" / "layer_profile"


def profile(files, batch, repeat, caffe_threads, library=None):
    """{layer: (type, ms)} and the whole pass (ms) from one run of the binary,
    on the libcaffe in the folder `library` if given (LD_LIBRARY_PATH comes
    before the binary's RUNPATH)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(surgery.num_threads())}
    if library is not None:
        env["LD_LIBRARY_PATH"] = str(library)
    run = subprocess.run([str(binary()), *map(str, files), str(batch), "451", "451",
                          str(repeat), str(caffe_threads)], capture_output=True, text=True,
                         check=True, env=env)
    rows = [line.split("\t") for line in run.stdout.splitlines()]
    return {name: (kind, float(ms)) for name, kind, ms in rows}


def side_by_side(columns, measure, rounds, batch):
    """{column: {layer: (type, median ms per image)}}: measure(column) gives a
    list of {layer: (type, ms)} runs; the columns take turns, in an order
    reversed every other round."""
    runs = {column: [] for column in columns}
    for r in range(rounds):
        for column in (columns if r % 2 == 0 else columns[::-1]):
            runs[column] += measure(column)
    return {column: {name: (found[0][name][0],
                            statistics.median(f[name][1] for f in found) / batch)
                     for name in found[0]}
            for column, found in runs.items()}


def ours_measure(files, batch, repeat, algorithms=("caffe", "winograd")):
    """measure() for side_by_side over our Net with each convolution
    algorithm ("caffe", "winograd"): `repeat` forwards' Net.layer_times after
    one untimed forward (it reshapes, allocates and transforms the weights);
    "total" is the whole forward call."""
    nets = {}
    for algorithm in algorithms:
        nets[algorithm] = surgery.Net(*files)
        nets[algorithm].convolution = algorithm
    kinds = {layer.name: layer.type for layer in nets[algorithms[0]].layers}
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 3, 451, 451)).astype(np.float32)

    def measure(algorithm):
        net = nets[algorithm]
        net.forward(data=x)
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            net.forward(data=x)
            runs.append({**{name: (kinds.get(name, "Split"), ms)
                            for name, ms in net.layer_times.items()},
                         "total": ("-", 1000 * (time.perf_counter() - start))})
        return runs
    return measure


def onnx_runtime_measure(files, batch, repeat, folder, convolution):
    """measure() for side_by_side over columns "surgery" (ours, with
    `convolution`) and "ONNX Runtime": ORT's runs come from its profiler's trace
    ({node: (op type, ms)} per run, "total" its model_run), a fresh session
    each time (a session's profile ends when read), its first run untimed."""
    import onnxruntime
    ours = ours_measure(files, batch, repeat, [convolution])
    surgery.export_onnx(surgery.Net(*files), folder / "fc.onnx")
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 3, 451, 451)).astype(np.float32)

    def measure(column):
        if column == "surgery":
            return ours(convolution)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = surgery.num_threads()
        options.enable_profiling = True
        options.profile_file_prefix = str(folder / "ort_profile")
        session = onnxruntime.InferenceSession(str(folder / "fc.onnx"), options,
                                               providers=["CPUExecutionProvider"])
        for _ in range(repeat + 1):
            session.run(None, {"data": x})
        with open(session.end_profiling()) as trace:
            return ort_runs(json.load(trace))[1:]
    return measure


def ort_runs(events):
    """[{node: (op type, ms)} plus "total"] per run of an ORT profiler
    trace. Node names are our layer names; ORT's rewrites add a suffix
    ("conv1_nchwc") or name a node after its output ("fc6@relu6")."""
    runs, nodes = [], {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            name = event["name"][:-len("_kernel_time")].replace("_nchwc", "").split("@")[0]
            kind, ms = event["args"]["op_name"], event["dur"] / 1000
            nodes[name] = (kind, nodes.get(name, (kind, 0.0))[1] + ms)
        elif event.get("cat") == "Session" and event["name"] == "model_run":
            runs.append({**nodes, "total": ("-", event["dur"] / 1000)})
            nodes = {}
    return runs


def onnx_table(columns, batch):
    """Per layer, ours and ORT's node of the same name ("-" where ORT has
    none: fused, or a layout reorder of its own), then per type."""
    ours, theirs = columns["surgery"], columns["ONNX Runtime"]
    per = " per image" if batch > 1 else ""
    print(f"\nbatch {batch}, ms{per} (median); ORT's node type where it differs")
    print(f"{'layer':<24}{'type':<14}{'surgery':>9}{'ORT':>9}  ORT node")
    for name in list(ours) + [name for name in theirs if name not in ours]:
        if name == "total":
            continue
        kind, mine = ours[name] if name in ours else (theirs[name][0], None)
        their_kind, their_ms = theirs.get(name, ("", None))
        print(f"{name:<24}{kind:<14}" + "".join(
            f"{ms:9.2f}" if ms is not None else f"{'-':>9}" for ms in (mine, their_ms))
            + f"  {their_kind if their_kind != kind else ''}")
    print(f"{'whole pass':<38}{ours['total'][1]:9.2f}{theirs['total'][1]:9.2f}"
          f"  ours / ORT {ours['total'][1] / theirs['total'][1]:.2f}x")
    for column, rows in columns.items():
        kinds = {}
        for name, (kind, ms) in rows.items():
            if name != "total":
                kinds[kind] = kinds.get(kind, 0.0) + ms
        print(f"{column} per type: " + ", ".join(
            f"{kind} {ms:.1f}" for kind, ms in sorted(kinds.items(), key=lambda kv: -kv[1])))


def table(columns, batch):
    (first, before), (second, after) = columns.items()
    total_before, total_after = before["total"][1], after["total"][1]
    per = " per image" if batch > 1 else ""
    print(f"\nbatch {batch}, ms{per} (median), share of the {first} pass")
    print(f"{'layer':<12}{'type':<14}{first:>9}{'share':>7}{second:>10}{'x':>7}")
    for name, (kind, ms) in before.items():
        if name == "total":
            continue
        faster = ms / after[name][1] if after[name][1] > 0 else float("nan")
        print(f"{name:<12}{kind:<14}{ms:9.2f}{100 * ms / total_before:6.0f}%"
              f"{after[name][1]:10.2f}{faster:7.2f}")
    print(f"{'whole pass':<26}{total_before:9.2f}{'':7}{total_after:10.2f}"
          f"{total_before / total_after:7.2f}")


def gpu_profile(gpu_binary, files, repeat, tf32):
    """{layer: (type, ms)}, {whole-pass row: ms}, {copy: (bytes, ms)}."""
    run = subprocess.run([str(gpu_binary), *map(str, files), "451", "451", str(repeat)]
                         + (["tf32"] if tf32 else []), capture_output=True, text=True, check=True)
    lines = [line.split("\t") for line in run.stdout.splitlines()]
    gemms = {row[1]: tuple(map(int, row[2:6])) + tuple(map(float, row[6:]))
             for row in lines if row[0] == "gemm"}
    rows = [row for row in lines if row[0] != "gemm"]
    copies = {name: (int(size), float(ms)) for name, size, ms in rows
              if name.startswith(("h2d", "d2h"))}
    layers = {name: (kind, float(ms)) for name, kind, ms in rows
              if kind != "-" and name not in copies}
    whole = {name: float(ms) for name, kind, ms in rows if kind == "-"}
    return layers, whole, copies, gemms


def gpu_table(gpu_binary, files, repeat):
    """Float and TF32 side by side, one binary run each."""
    (layers, whole, copies, gemms), (tf32_layers, tf32_whole, _, tf32_gemms) = (
        gpu_profile(gpu_binary, files, repeat, tf32) for tf32 in (False, True))
    print(f"\nGPU, batch 1, ms (median of {repeat}), each layer alone with a device sync")
    print(f"{'layer':<12}{'type':<14}{'float':>9}{'TF32':>9}")
    for name, (kind, ms) in layers.items():
        print(f"{name:<12}{kind:<14}{ms:9.3f}{tf32_layers[name][1]:9.3f}")
    print(f"{'sum of layers':<26}{sum(ms for _, ms in layers.values()):9.3f}"
          f"{sum(ms for _, ms in tf32_layers.values()):9.3f}")
    for label, row in (("launch (host)", "enqueue"), ("launch and wait", "forward"),
                       ("device (events)", "device"), ("head: launch", "enqueue-head"),
                       ("head: device", "device-head")):
        print(f"{'whole: ' + label:<26}{whole[row]:9.3f}{tf32_whole[row]:9.3f}")
    for name, (size, ms) in copies.items():
        print(f"copy {name:<11}{size / 2**20:6.2f} MiB {ms:8.3f} ms ({size / ms / 1e6:.1f} GB/s)")
    print("\nEach Convolution's GEMMs alone (as Caffe issues them; device time, ms, and "
          "TFLOP/s), float | TF32")
    print(f"{'layer':<12}{'M x N x K (groups)':<26}{'GEMM':>8}{'TFLOP/s':>8}{'bias':>8}"
          f"{'GEMM':>9}{'TFLOP/s':>8}{'bias':>8}")
    for name, (m, n, k, groups, ms, bias) in gemms.items():
        gflop = 2 * m * n * k * groups / 1e9
        t_ms, t_bias = tf32_gemms[name][4:]
        print(f"{name:<12}{f'{m} x {n} x {k} ({groups})':<26}{ms:8.3f}{gflop / ms:8.1f}"
              f"{bias:8.3f}{t_ms:9.3f}{gflop / t_ms:8.1f}{t_bias:8.3f}")


def kernel_table(plain_binary, files, folder, passes=4):
    """Each kernel's device time in `passes` GPU forwards of stock Caffe
    (benchmarks/plain_caffe, one warm-up and passes - 1 timed), measured by
    Nsight Compute (ncu; kernels run one at a time under it): their sum per
    forward is what the device must do, against the whole forward's time."""
    source, result = folder / "ncu_in.bin", folder / "ncu_out.bin"
    np.zeros((1, 3, 451, 451), np.float32).tofile(source)
    run = subprocess.run(["ncu", "--csv", "--metrics", "gpu__time_duration.sum",
                          str(plain_binary), *map(str, files), "451", "451", str(passes - 1),
                          "gpu", str(source), str(result)], capture_output=True, text=True)
    rows = [row for row in csv.reader(run.stdout.splitlines()) if len(row) > 10]
    if run.returncode != 0 or len(rows) < 2:
        print(f"\nncu gave no kernel times (exit {run.returncode}): {run.stderr[-400:]}")
        return
    header, rows = rows[0], rows[1:]
    name, unit, value = (header.index(c) for c in ("Kernel Name", "Metric Unit", "Metric Value"))
    scale = {"nsecond": 1e-6, "ns": 1e-6, "usecond": 1e-3, "us": 1e-3,
             "msecond": 1.0, "ms": 1.0}
    per_kernel = {}
    for row in rows:
        ms = float(row[value].replace(",", "")) * scale[row[unit]]
        key = row[name].split("(")[0][:60]
        count, total = per_kernel.get(key, (0, 0.0))
        per_kernel[key] = (count + 1, total + ms)
    total = sum(ms for _, ms in per_kernel.values())
    launches = sum(count for count, _ in per_kernel.values())
    print(f"\nKernels of one GPU forward (ncu, stock Caffe, mean of {passes} passes): "
          f"{launches / passes:.0f} launches, {total / passes:.3f} ms of device time")
    for key, (count, ms) in sorted(per_kernel.items(), key=lambda kv: -kv[1][1])[:15]:
        print(f"  {ms / passes:8.3f} ms  {count / passes:4.0f} x  {key}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=0, help="also profile N images in a blob")
    parser.add_argument("--gpu", type=pathlib.Path, help="the gpu_profile binary: a GPU profile")
    parser.add_argument("--kernels", type=pathlib.Path, metavar="PLAIN_CAFFE",
                        help="with --gpu: also each kernel's time under ncu, from this "
                             "benchmarks/plain_caffe binary")
    parser.add_argument("--winograd", action="store_true",
                        help="columns 'caffe' and 'winograd': our Net with each convolution "
                             "algorithm (Net.layer_times)")
    parser.add_argument("--onnx", action="store_true",
                        help="columns 'surgery' and 'ONNX Runtime': our Net and ORT on the "
                             "net exported to ONNX, ORT timed by its own profiler")
    parser.add_argument("--convolution", default="caffe",
                        choices=("caffe", "winograd", "onednn", "fastest"),
                        help="with --onnx: our Net's convolution algorithm (default caffe)")
    parser.add_argument("--before", type=pathlib.Path, metavar="LIBDIR",
                        help="columns 'before' and 'after' instead: the lib folder of another "
                             "libcaffe of the same ABI (an earlier recipe's cache entry) "
                             "against ours, both on all threads")
    args = parser.parse_args()
    if not (args.gpu or args.winograd or args.onnx) and not binary().exists():
        raise SystemExit(f"{binary()} not built: run ./run.sh test first")
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        net = surgery.Net(fixtures() / "bvlc_reference_caffenet" / "deploy.prototxt")
        randomize(net)
        surgery.fully_convolutionalize(net)
        files = folder / "fc.prototxt", folder / "fc.caffemodel"
        net.save(*files)
        if args.gpu:
            gpu_table(args.gpu, files, args.repeat)
            if args.kernels:
                kernel_table(args.kernels, files, folder)
            return
        if args.winograd:
            print(f"CaffeNet converted, random weights, 451x451; {surgery.num_threads()} "
                  f"threads; our Net, convolution 'caffe' against 'winograd'")
            for batch in [1] + ([args.batch] if args.batch > 1 else []):
                table(side_by_side(["caffe", "winograd"], ours_measure(files, batch, args.repeat),
                                   args.rounds, batch), batch)
            return
        if args.onnx:
            print(f"CaffeNet converted, random weights, 451x451; {surgery.num_threads()} "
                  f"threads; our Net (convolution {args.convolution!r}) against ONNX "
                  f"Runtime on its export")
            for batch in [1] + ([args.batch] if args.batch > 1 else []):
                onnx_table(side_by_side(["surgery", "ONNX Runtime"], onnx_runtime_measure(
                    files, batch, args.repeat, folder, args.convolution), args.rounds, batch),
                    batch)
            return
        if args.before:
            columns = {"before": (0, args.before), "after": (0, None)}
            print(f"CaffeNet converted, random weights, 451x451; {surgery.num_threads()} "
                  f"threads; before: {args.before}")
        else:
            columns = {"serial": (1, None), "parallel": (0, None)}
            print(f"CaffeNet converted, random weights, 451x451; {surgery.num_threads()} "
                  f"threads (BLAS and, in the parallel column, libcaffe's loops)")
        for batch in [1] + ([args.batch] if args.batch > 1 else []):
            table(side_by_side(list(columns), lambda column: [profile(
                files, batch, args.repeat, *columns[column])], args.rounds, batch), batch)


if __name__ == "__main__":
    main()
