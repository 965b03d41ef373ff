"""Support for this project's tests, benchmarks and hardening runs (as
``numpy.testing`` is for numpy's): where the shared fixtures are, nets with
random weights, and the plain-Caffe baseline runner.

Fixtures are found at ``$SURGERY_FIXTURES`` or, by default, in
``shared/fixtures`` beside the checkout being run from.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ._core import num_threads
from .net import Net, PathLike


def checkout() -> pathlib.Path:
    """The source checkout holding the current directory (or the current
    directory itself, outside one)."""
    here = pathlib.Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "src" / "python" / "surgery" / "__init__.py").exists():
            return folder
    return here


def fixtures() -> pathlib.Path:
    """The shared fixtures folder (which may not exist)."""
    default = checkout().parent / "shared" / "fixtures"
    return pathlib.Path(os.environ.get("SURGERY_FIXTURES", default))


def plain_caffe_binary() -> pathlib.Path:
    """Where ``./run.sh test`` builds benchmarks/plain_caffe.cpp."""
    return checkout() / "build" / "test" / "benchmarks" / "plain_caffe"


def stock_caffe_binary() -> Optional[pathlib.Path]:
    """benchmarks/plain_caffe built against a stock libcaffe (none of our
    patches), the oracle for what they change: ``$SURGERY_STOCK_CAFFE``,
    which ``./run.sh test`` sets where it builds it (by default the checkout's
    build/stock/plain_caffe). None when that variable says ``none``: no stock
    build wanted."""
    given = os.environ.get("SURGERY_STOCK_CAFFE")
    if given == "none":
        return None
    return pathlib.Path(given) if given else checkout() / "build" / "stock" / "plain_caffe"


def randomize(net: Net, seed: int = 0) -> None:
    """Fill every param with random values that keep activations sane.

    BatchNorm gets positive variances and a scale factor of 1, so the
    random net computes finite numbers of ordinary size.
    """
    rng = np.random.default_rng(seed)
    types = {layer.name: layer.type for layer in net.layers}
    for name, blobs in net.params.items():
        if types[name] == "BatchNorm":
            blobs[0][...] = rng.standard_normal(blobs[0].shape) * 0.1
            blobs[1][...] = rng.uniform(0.5, 1.5, blobs[1].shape)
            blobs[2][...] = 1
            continue
        for blob in blobs:
            fan_in = max(1, int(np.prod(blob.shape[1:]))) if blob.ndim > 1 else 1
            scale = np.sqrt(2.0 / fan_in) if blob.ndim > 1 else 0.01
            blob[...] = rng.standard_normal(blob.shape, dtype=np.float32) * scale


def random_model(prototxt: PathLike, folder: pathlib.Path,
                 seed: int = 0) -> Tuple[pathlib.Path, pathlib.Path]:
    """Save (prototxt, caffemodel) with random weights in `folder`; return their paths."""
    net = Net(prototxt)
    randomize(net, seed)
    out_proto, out_model = folder / "model.prototxt", folder / "model.caffemodel"
    net.save(out_proto, out_model)
    return out_proto, out_model


def with_input(prototxt_text: str, shape: Sequence[int]) -> str:
    """A net definition text with an Input layer of `shape` prepended."""
    dims = " ".join(f"dim: {d}" for d in shape)
    return (f'layer {{ name: "data" type: "Input" top: "data" '
            f'input_param {{ shape {{ {dims} }} }} }}\n' + prototxt_text)


def plain_caffe(binary: PathLike, prototxt: PathLike, model: PathLike, x: np.ndarray,
                repeat: int, mode: str, folder: pathlib.Path,
                timeout: Optional[float] = None) -> Tuple[List[float], np.ndarray]:
    """Stock Caffe's forward on x in a subprocess (benchmarks/plain_caffe.cpp,
    none of our code): its run times (ms) and its output, flat. It runs on
    as many BLAS threads as this process (surgery.num_threads()): the split
    of a GEMM's sums changes their rounding, and the timings compare like
    with like. ``timeout`` (seconds) bounds the run (subprocess.TimeoutExpired
    past it)."""
    source, result = folder / "plain_in.bin", folder / "plain_out.bin"
    x.astype(np.float32).tofile(source)
    threads = str(num_threads())
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
    run = subprocess.run([os.fspath(binary), os.fspath(prototxt), os.fspath(model),
                          *map(str, x.shape[2:]), str(repeat), mode, str(source), str(result)],
                         capture_output=True, text=True, check=True, env=environment,
                         timeout=timeout)
    return [float(line) for line in run.stdout.split()], np.fromfile(result, np.float32)
