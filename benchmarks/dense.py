"""Dense benchmark: CaffeNet (random weights), batch 1, on the CPU and, with
--gpu, on the GPU too (a second column).

Rows, all measured in this one run (medians of --repeat runs each):
  surgery  227 single      the original net on one 227x227 window
  surgery  451 dense       the converted net on 451x451: an 8x8 map
  plain Caffe 227 / 451    stock caffe::Net on the same files and inputs, none of
                           our code (benchmarks/plain_caffe.cpp): our overhead
  surgery  64 crops, one by one / batched   the sliding-window way to the same map
  OpenCV   451 dense       cv2.dnn on our converted files, timed in alternating
                           blocks with our dense forward (timed again for it)
  PyTorch  451 dense       the same architecture and weights in torch (if installed)
  ONNX Runtime 451 dense   our converted net exported to ONNX (surgery.export_onnx),
                           on ONNX Runtime's CPU provider with as many threads as
                           ours; its map checked against ours (1e-4 of the
                           map's scale) before it is timed (if onnxruntime is
                           installed)
  8 / 32 x 451 batched     throughput: 8 and 32 images of 451x451 as one blob,
                           ours, OpenCV's and PyTorch's, time per image (and
                           images/s), timed in alternating blocks
  surgery winograd ...     the same net with convolution="winograd" (opt-in:
                           conv1-5 and fc6 by Winograd's algorithm), in the
                           same alternating blocks as the rows above
  surgery onednn ...       the same with convolution="onednn" (opt-in: every
                           convolution by oneDNN's kernels), likewise
  surgery fastest ...      the same with convolution="fastest" (opt-in: each
                           layer by whichever of the three measured fastest)
GFLOP/s is the dense forward's multiply-adds x 2 over its time, and its share
of numpy's measured SGEMM rate on the same cores (for Winograd "effective":
the direct convolution's count, which it does not perform).

    .venv/bin/python benchmarks/dense.py [--repeat 15] [--gpu] [--plain-caffe BINARY]

The plain Caffe binary is the one `./run.sh test` builds
(build/test/benchmarks/plain_caffe); without it those rows are left out.

--gpu measures the surgery and plain Caffe rows again in Caffe's GPU mode (a
CUDA libcaffe and a device needed), in a GPU column named after the device,
and adds a TF32 row (surgery.set_tf32); OpenCV and PyTorch run on the CPU.
--gpu-only measures the GPU column alone (the CPU map is still computed, once,
for the GPU-vs-CPU difference): the short run for a scarce GPU lease.
"""

import argparse
import pathlib
import statistics
import subprocess
import tempfile
import time

import numpy as np

import surgery
from surgery.testing import fixtures, plain_caffe, plain_caffe_binary, randomize

FIXTURES = fixtures()


def times_ms(fn, repeat):
    """Milliseconds of `repeat` calls, after 0.3 s of warm-up calls: the
    first allocates and reshapes, the rest bring a GPU's clocks up (an H200
    idles at 345 MHz: a 451 forward right after an idle gap took 2.1 ms
    instead of 1.6)."""
    start = time.perf_counter()
    fn()
    while time.perf_counter() - start < 0.3:
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return times


def median_ms(fn, repeat):
    return statistics.median(times_ms(fn, repeat))


def dense_gflop(net):
    """Multiply-adds x 2 of every Convolution and InnerProduct at the current shapes."""
    total = 0
    for layer in net.layers:
        if layer.type not in ("Convolution", "InnerProduct"):
            continue
        weights = net.params[layer.name][0]
        out = net.blobs[layer.tops[0]]
        per_output = int(np.prod(weights.shape[1:]))
        total += 2 * out.size * per_output
    return total / 1e9


def sgemm_gflops(repeat):
    """numpy's SGEMM rate on 4096^3, from the fastest of `repeat` runs: a
    peak, which a moment of load on this shared machine must not lower (a
    median of 3 once read 90 GFLOP/s against 135-145 in other runs)."""
    a = np.random.default_rng(0).standard_normal((4096, 4096), dtype=np.float32)
    ms = min(times_ms(lambda: a @ a, max(3, repeat)))
    return 2 * 4096 ** 3 / (ms / 1000) / 1e9


def alternating_ms(fns, repeat, rounds=3):
    """{name: median ms} of each callable in `fns`, timed in alternating
    blocks (each takes a turn every round) so that cache state and the
    shared machine's drift fall on all alike."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name] += times_ms(fn, max(1, repeat // rounds))
    return {name: statistics.median(t) for name, t in times.items()}


def row_name(engine, n):
    """The table's row for `engine` on n images of 451x451."""
    if n == 1:
        return "surgery 451 dense, beside OpenCV" if engine == "surgery" else f"{engine} 451 dense"
    return f"{engine} {n} x 451 {'blob' if engine == 'OpenCV' else 'batched'}, per image"


def engine_rows(dense, algorithms, cv_net, model, ort_session, x451, repeat):
    """Per-image ms of 1, 8 and 32 images of 451x451 in one blob: ours (one
    forward of the batch: the fc-conv GEMMs take all images' columns at
    once), ours with each other convolution algorithm (`algorithms`: row
    name -> Net), OpenCV's, PyTorch's and ONNX Runtime's where present. Each
    batch size is timed in alternating blocks, so that each ours/theirs
    ratio is of one moment (our one-image forward is timed again for this,
    beside theirs)."""
    rows = {}
    for n in (1, 8, 32):
        batch = np.ascontiguousarray(np.repeat(x451, n, axis=0))
        fns = {row_name("surgery", n): lambda b=batch: dense.forward(data=b)}
        for engine, net in algorithms.items():
            fns[row_name(engine, n)] = lambda b=batch, net=net: net.forward(data=b)
        if cv_net is not None:
            def cv_forward(b=batch):
                cv_net.setInput(b)
                return cv_net.forward()
            fns[row_name("OpenCV", n)] = cv_forward
        if model is not None:
            import torch
            tb = torch.from_numpy(batch)

            def torch_forward(tb=tb):
                with torch.inference_mode():
                    return model(tb)
            fns[row_name("PyTorch", n)] = torch_forward
        if ort_session is not None:
            fns[row_name("ONNX Runtime", n)] = \
                lambda b=batch: ort_session.run(None, {"data": b})
        few = repeat if n == 1 else max(3, repeat // 3)
        # One timed call per engine per round: a burst of load on this shared
        # machine falls on all engines' samples alike, not on one's block.
        rows.update({name: ms / n for name, ms in alternating_ms(fns, few, rounds=few).items()})
    for net in (dense, *algorithms.values()):
        net.reshape(data=x451.shape)
    return rows


def paired_ms(ours, binary, files, x, repeat, mode, folder, rounds=3):
    """Medians of our forward and plain Caffe's on x, taken in alternating
    rounds so that the shared machine's drift falls on both alike."""
    mine, theirs = [], []
    for _ in range(rounds):
        mine += times_ms(ours, max(1, repeat // rounds))
        runs, output = plain_caffe(binary, *files, x, max(1, repeat // rounds), mode, folder)
        theirs += runs
    return statistics.median(mine), statistics.median(theirs), output


def onnx_runtime_session(net, folder, cpu_map, x451):
    """An ONNX Runtime session over `net` exported to ONNX, on as many
    threads as ours, and the largest difference of its 451 map to ours;
    None (and why) where onnx or onnxruntime is not installed. A map that
    differs by more than 1e-4 of its scale stops the benchmark: a time of
    another computation would be no comparison."""
    try:
        import onnxruntime
    except ImportError:
        return None, None, "onnxruntime not installed: no ONNX Runtime row"
    surgery.export_onnx(net, folder / "fc.onnx")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = surgery.num_threads()
    session = onnxruntime.InferenceSession(str(folder / "fc.onnx"), options,
                                           providers=["CPUExecutionProvider"])
    difference = np.abs(session.run(None, {"data": x451})[0] - cpu_map).max()
    if difference > 1e-4 * np.abs(cpu_map).max():
        raise SystemExit(f"ONNX Runtime's map differs from ours by {difference:.1e}: not timed")
    return session, difference, f"onnxruntime {onnxruntime.__version__}"


def torch_caffenet(net):
    import torch
    from torch import nn

    def conv(name, cin, cout, k, stride=1, pad=0, groups=1):
        layer = nn.Conv2d(cin, cout, k, stride, pad, groups=groups)
        w, b = net.params[name]
        layer.weight.data = torch.from_numpy(np.array(w))
        layer.bias.data = torch.from_numpy(np.array(b))
        return layer

    pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # Caffe rounds up
    lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
    model = nn.Sequential(
        conv("conv1", 3, 96, 11, 4), nn.ReLU(), pool(), lrn(),
        conv("conv2", 96, 256, 5, pad=2, groups=2), nn.ReLU(), pool(), lrn(),
        conv("conv3", 256, 384, 3, pad=1), nn.ReLU(),
        conv("conv4", 384, 384, 3, pad=1, groups=2), nn.ReLU(),
        conv("conv5", 384, 256, 3, pad=1, groups=2), nn.ReLU(), pool(),
        conv("fc6-conv", 256, 4096, 6), nn.ReLU(),
        conv("fc7-conv", 4096, 4096, 1), nn.ReLU(),
        conv("fc8-conv", 4096, 1000, 1), nn.Softmax(dim=1))
    return model.eval()


def measure_ours(original, dense, x227, x451, crops, args, folder, mode):
    """Our rows and plain Caffe's in one mode ("cpu" or "gpu"): {row: ms},
    the 451 map, and how far plain Caffe's (and TF32's) maps are from it."""
    surgery.set_mode(mode)
    try:
        rows, check, plain_maps = {}, {}, {}
        for label, net, x, stem in (("227 single", original, x227, "o"),
                                    ("451 dense (8x8)", dense, x451, "fc")):
            def ours(net=net, x=x):
                return net.forward(data=x)
            if args.plain_caffe.exists():
                files = folder / f"{stem}.prototxt", folder / f"{stem}.caffemodel"
                rows[f"surgery {label}"], rows[f"plain Caffe {label}"], plain_maps[label] = \
                    paired_ms(ours, args.plain_caffe, files, x, args.repeat, mode, folder)
            else:
                rows[f"surgery {label}"] = median_ms(ours, args.repeat)
        exact = dense.forward(data=x451)["prob"]
        if plain_maps:
            check[f"{mode.upper()} plain Caffe"] = np.abs(
                plain_maps["451 dense (8x8)"] - exact.ravel()).max()
        few = max(3, args.repeat // 5)
        if mode == "gpu":  # opt-in TF32 tensor cores: its time and how far it moves the map
            def dense_tf32():
                return dense.forward(data=x451)
            batch = np.repeat(x451, 32, axis=0)
            try:
                # The input in page-locked memory (surgery.pinned_empty, as
                # dense_forward stages its batches in GPU mode): its copy to
                # the device is one DMA. Timed alternating with the same
                # input in ordinary memory.
                pinned = surgery.pinned_empty(x451.shape)
                pinned[...] = x451
                for label, tf32 in (("", False), (" TF32", True)):
                    surgery.set_tf32(tf32)
                    timed = alternating_ms({
                        f"surgery 451 dense{label}": lambda: dense.forward(data=x451),
                        f"surgery 451 dense{label}, pinned input":
                            lambda: dense.forward(data=pinned)}, args.repeat)
                    rows[f"surgery 451 dense{label}, pinned input"] = \
                        timed[f"surgery 451 dense{label}, pinned input"]
                    if tf32:
                        rows["surgery 451 dense TF32"] = timed["surgery 451 dense TF32"]
                check["GPU TF32"] = np.abs(dense_tf32()["prob"] - exact).max()
                check["GPU TF32 pinned vs ordinary input"] = np.abs(
                    dense.forward(data=pinned)["prob"] - dense_tf32()["prob"]).max()
                # Throughput: 32 images of 451x451 in one blob, time per image.
                for label, tf32 in (("", False), (" TF32", True)):
                    surgery.set_tf32(tf32)
                    rows[f"surgery 32 x 451 batched{label}, per image"] = median_ms(
                        lambda: dense.forward(data=batch), few) / 32
                # Back at batch 1, in blobs sized for 32 (Caffe keeps capacity).
                dense.reshape(data=x451.shape)
                rows["surgery 451 dense TF32 after the batch"] = median_ms(dense_tf32, args.repeat)
            finally:
                surgery.set_tf32(False)
        rows["surgery 64 crops one by one"] = median_ms(
            lambda: [original.forward(data=crops[k:k + 1]) for k in range(64)], few)
        rows["surgery 64 crops batched"] = median_ms(lambda: original.forward(data=crops), few)
        original.reshape(data=(1, 3, 227, 227))
    finally:
        surgery.set_mode("cpu")
    return rows, exact, check


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--gpu-only", action="store_true", help="the GPU column alone")
    parser.add_argument("--plain-caffe", type=pathlib.Path, default=plain_caffe_binary(),
                        help="the benchmarks/plain_caffe binary")
    args = parser.parse_args()
    args.gpu = args.gpu or args.gpu_only
    if args.gpu and not surgery.gpu_available():
        surgery.set_mode("gpu")  # raises the clear error: no CUDA build, or no device
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        original = surgery.Net(FIXTURES / "bvlc_reference_caffenet" / "deploy.prototxt")
        randomize(original)
        original.save(folder / "o.prototxt", folder / "o.caffemodel")
        dense = surgery.Net(folder / "o.prototxt", folder / "o.caffemodel")
        surgery.fully_convolutionalize(dense)
        dense.save(folder / "fc.prototxt", folder / "fc.caffemodel")
        x227 = rng.uniform(-1, 1, (1, 3, 227, 227)).astype(np.float32)
        x451 = rng.uniform(-1, 1, (1, 3, 451, 451)).astype(np.float32)
        crops = np.concatenate([x451[:, :, 32 * i:32 * i + 227, 32 * j:32 * j + 227]
                                for i in range(8) for j in range(8)])
        dense.reshape(data=x451.shape)
        gflop = dense_gflop(dense)
        columns, others, check = {}, {}, {}
        if args.gpu_only:
            cpu_map = dense.forward(data=x451)["prob"]
        else:
            columns["CPU"], cpu_map, check = measure_ours(original, dense, x227, x451, crops,
                                                          args, folder, "cpu")
        if args.gpu:
            columns[gpu_name()], gpu_map, gpu_check = measure_ours(
                original, dense, x227, x451, crops, args, folder, "gpu")
            check.update(gpu_check)
            check["GPU vs CPU"] = np.abs(gpu_map - cpu_map).max()
        if args.gpu_only:
            print(f"CaffeNet, random weights, batch 1, medians of {args.repeat} runs")
            print_checks(check)
            print_table(columns, others)
            print_ratios(columns, gflop, peak=None)
            return
        import cv2
        cv_net = model = None
        # OpenCV 5 dropped the Caffe importer (the GPU machine has it): no row then.
        if hasattr(cv2.dnn, "readNetFromCaffe"):
            cv_net = cv2.dnn.readNetFromCaffe(str(folder / "fc.prototxt"),
                                              str(folder / "fc.caffemodel"))

            cv_net.setInput(x451)
            check["OpenCV"] = np.abs(cv_net.forward() - cpu_map).max()
        try:
            import torch
            model = torch_caffenet(dense)
            with torch.inference_mode():
                check["PyTorch"] = np.abs(model(torch.from_numpy(x451)).numpy() - cpu_map).max()
            torch_note = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
        except ImportError:
            torch_note = "torch not installed: no PyTorch row"
        ort_session, check["ONNX Runtime"], ort_note = onnx_runtime_session(
            dense, folder, cpu_map, x451)
        if ort_session is None:
            del check["ONNX Runtime"]
        algorithms = {}
        for algorithm, label in (("winograd", "Winograd"), ("onednn", "oneDNN"),
                                 ("fastest", "fastest")):
            net = algorithms[f"surgery {algorithm}"] = surgery.Net(folder / "fc.prototxt",
                                                                    folder / "fc.caffemodel")
            net.convolution = algorithm
            check[label] = np.abs(net.forward(data=x451)["prob"] - cpu_map).max()
        winograd_note = ("Winograd layers: "
                         + ", ".join(algorithms["surgery winograd"].engine_layers)
                         + "; fastest's not Caffe's: "
                         + ", ".join(algorithms["surgery fastest"].engine_layers))
        others.update(engine_rows(dense, algorithms, cv_net, model, ort_session, x451,
                                  args.repeat))
        peak = sgemm_gflops(args.repeat)
    print(f"CaffeNet, random weights, batch 1, medians of {args.repeat} runs; {torch_note}; "
          f"OpenCV {cv2.__version__}; {ort_note}; {winograd_note}")
    print_checks(check)
    if not args.plain_caffe.exists():
        print(f"no {args.plain_caffe} (./run.sh test builds it): no plain Caffe rows")
    print_table(columns, others)
    print_ratios(columns, gflop, peak)
    for n in (1, 8, 32):
        for ours_engine, effective in (("surgery", ""), ("surgery winograd", " effective"),
                                       ("surgery onednn", ""), ("surgery fastest", " effective")):
            ours = others[row_name(ours_engine, n)]
            line = (f"CPU{ours_engine[7:]} {n} x 451{' batched' if n > 1 else ''}: "
                    f"{1000 / ours:.1f} images/s, {gflop / ours * 1000:.0f}{effective} GFLOP/s "
                    f"({gflop / ours * 1000 / peak:.0%} of the SGEMM peak)")
            for engine in ("OpenCV", "PyTorch", "ONNX Runtime"):
                if row_name(engine, n) in others:
                    theirs = others[row_name(engine, n)]
                    line += f"; {engine} {1000 / theirs:.1f} images/s, ours/theirs " \
                            f"{ours / theirs:.2f}x time"
            print(line)
    print(f"numpy SGEMM 4096^3 on these CPU cores: {peak:.0f} GFLOP/s; "
          f"surgery.num_threads() {surgery.num_threads()}")


def print_checks(check):
    print("max |difference| to our CPU 8x8 probabilities: "
          + ", ".join(f"{k} {v:.1e}" for k, v in check.items()))


def print_ratios(columns, gflop, peak):
    """Per device: dense over single, the sliding-window speedups, our
    overhead over plain Caffe, GFLOP/s (and the CPU's share of `peak`)."""
    for device, rows in columns.items():
        single, dense_ms = rows["surgery 227 single"], rows["surgery 451 dense (8x8)"]
        print(f"\n{device}: dense / single (the seed's '3x') {dense_ms / single:.2f}; "
              f"sliding-window speedup {rows['surgery 64 crops one by one'] / dense_ms:.1f}x "
              f"one by one, {rows['surgery 64 crops batched'] / dense_ms:.1f}x batched")
        if "plain Caffe 227 single" in rows:
            print(f"{device}: our forward over plain Caffe's "
                  f"{single / rows['plain Caffe 227 single'] - 1:+.1%} at 227, "
                  f"{dense_ms / rows['plain Caffe 451 dense (8x8)'] - 1:+.1%} at 451 dense")
        print(f"{device}: dense forward {gflop:.1f} GFLOP in {dense_ms:.2f} ms = "
              f"{gflop / dense_ms * 1000:.0f} GFLOP/s"
              + (f", {gflop / dense_ms * 1000 / peak:.0%} of the SGEMM peak"
                 if device == "CPU" and peak else ""))


def gpu_name():
    names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                           capture_output=True, text=True).stdout.strip()
    return f"GPU {names.splitlines()[0]}" if names else "GPU"


def print_table(columns, others):
    """Rows x devices: ms and the ratio to that device's 451 dense row."""
    # The last column (the GPU's, when there is one) has every row: its order.
    names = list(dict.fromkeys(name for rows in reversed(columns.values()) for name in rows))
    names += list(others)
    widths = {device: max(8, len(device) + 3) for device in columns}
    header = f"{'engine / task':<30}"
    for device, width in widths.items():
        header += f" {device + ' ms':>{width}} {'vs dense':>9}"
    print("\n" + header)
    for name in names:
        line = f"{name:<30}"
        for device, rows in columns.items():
            width = widths[device]
            ms = rows.get(name, others.get(name) if device == "CPU" else None)
            base = rows["surgery 451 dense (8x8)"]
            line += (f" {ms:>{width}.2f} {ms / base:>8.2f}x" if ms is not None
                     else f" {'-':>{width}} {'':>9}")
        print(line)


if __name__ == "__main__":
    main()
