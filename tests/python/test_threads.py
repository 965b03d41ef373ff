"""One thread setting for OpenBLAS and libcaffe's own loops, and those loops
(libcaffe recipe patch 0009: im2col, pooling, LRN, ReLU) split across
threads giving exactly what they give on one, checked against numpy; and
OpenBLAS's threads asleep, not spinning, once a forward is done."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import surgery
from surgery.testing import randomize, with_input

from layer_references import numpy_convolution, numpy_lrn, reference_pooling

# Large enough that every loop is split (patches 0009, 0013, 0014): 128
# pooling planes, LRN images of 1517 pixels (512 a thread at 64 channels),
# 576 im2col rows of 399 values; ReLU, whose threads take 512 k elements
# each, gets 1.6 M.
SHAPE = (2, 64, 37, 41)
SHAPES = {"relu": (2, 64, 111, 111)}

LAYERS = {
    "max_pool": 'layer { name: "out" type: "Pooling" bottom: "data" top: "out" '
                'pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }',
    "ave_pool": 'layer { name: "out" type: "Pooling" bottom: "data" top: "out" '
                'pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }',
    "relu": 'layer { name: "out" type: "ReLU" bottom: "data" top: "out" }',
    "lrn": 'layer { name: "out" type: "LRN" bottom: "data" top: "out" '
           'lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 k: 2 } }',
    "conv": 'layer { name: "out" type: "Convolution" bottom: "data" top: "out" '
            'convolution_param { num_output: 8 kernel_size: 3 pad: 1 stride: 2 } }',
}


# libcaffe built by our recipe has patch 0009; a Caffe of one's own may not
# (then only OpenBLAS follows the setting, and its loops stay serial).
PATCHED = surgery.thread_counts()["caffe"] != 0


@pytest.fixture(autouse=True)
def default_threads_after():
    yield
    surgery.set_num_threads(0)


def test_one_setting_reaches_blas():
    for n in (1, 3, 2):
        surgery.set_num_threads(n)
        assert surgery.num_threads() == n
        assert surgery.thread_counts()["blas"] == n
    surgery.set_num_threads(0)
    assert surgery.num_threads() >= 1
    assert surgery.thread_counts()["blas"] == surgery.num_threads()


@pytest.mark.skipif(not PATCHED, reason="this libcaffe lacks recipe patch 0009 (a Caffe_DIR "
                    "of one's own, or an older cached build)")
def test_one_setting_reaches_libcaffe():
    for n in (1, 3, 2):
        surgery.set_num_threads(n)
        assert surgery.thread_counts() == {"blas": n, "caffe": n}
    surgery.set_num_threads(0)
    assert surgery.thread_counts()["caffe"] == surgery.num_threads()


@pytest.mark.parametrize("bad", [-1, 5000, 2**70])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ValueError, match="threads"):
        surgery.set_num_threads(bad)
    with pytest.raises(TypeError):
        surgery.set_num_threads("2")


ENVIRONMENT_CHILD = """
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import surgery
print(json.dumps({"threads": surgery.num_threads(), "blas": surgery.thread_counts()["blas"],
                  "warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}))
"""


def import_with_threads(value):
    """(num_threads, BLAS threads, warnings) of `import surgery` in a child
    whose $SURGERY_NUM_THREADS is `value` (unset if None)."""
    env = {k: v for k, v in os.environ.items() if k != "SURGERY_NUM_THREADS"}
    if value is not None:
        env["SURGERY_NUM_THREADS"] = value
    run = subprocess.run([sys.executable, "-c", ENVIRONMENT_CHILD], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout)
    return out["threads"], out["blas"], out["warnings"]


@pytest.fixture(scope="module")
def unset():
    return import_with_threads(None)


def test_a_valid_thread_variable_is_applied_at_import():
    assert import_with_threads("3")[:2] == (3, 3)
    assert import_with_threads("3")[2] == []


@pytest.mark.parametrize("value", ["4097", "1000000000", "\u00b2", "abc", "-1", "9" * 5000,
                                   "1.5"])
def test_a_bad_thread_variable_warns_once_and_is_ignored(value, unset):
    threads, blas, caught = import_with_threads(value)
    assert (threads, blas) == unset[:2]
    assert caught == [f"RuntimeWarning: SURGERY_NUM_THREADS={value!r} ignored: give 0 "
                      "(all CPUs) to 4096"]


def run_layer(tmp_path, name, x, threads):
    path = tmp_path / f"{name}.prototxt"
    path.write_text(with_input(LAYERS[name], x.shape))
    net = surgery.Net(path)
    randomize(net, seed=4)
    surgery.set_num_threads(threads)
    out = net.forward(data=x)["out"]
    params = [p.copy() for p in net.params["out"]] if "out" in net.params else []
    return out, params


def numpy_reference(name, x, params):
    if name == "relu":
        return np.maximum(x.astype(np.float64), 0)
    if name == "lrn":
        return numpy_lrn(x, 5, 0.0001, 0.75, 2)
    if name == "conv":
        return numpy_convolution(x, *params, stride=2, pad=1, dilation=1)
    method = "MAX" if name == "max_pool" else "AVE"
    return reference_pooling(x.astype(np.float64), method, (3, 3), (2, 2), (1, 1), (1, 1), True)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_parallel_layers_equal_serial_and_numpy(tmp_path, name):
    shape = SHAPES.get(name, SHAPE)
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32) * 3
    serial, params = run_layer(tmp_path, name, x, threads=1)
    for threads in (2, 3):
        parallel, _ = run_layer(tmp_path, name, x, threads=threads)
        # im2col is a copy and the convolution's GEMM oneDNN's (recipe
        # patch 0020), whose sums do not depend on the thread count.
        np.testing.assert_array_equal(parallel, serial)
    reference = numpy_reference(name, x, params)
    if name in ("max_pool", "relu"):
        np.testing.assert_array_equal(serial, reference.astype(np.float32))
    else:
        np.testing.assert_allclose(serial, reference, rtol=1e-5, atol=1e-5)


IDLE_CPU_CHILD = """
import pathlib, sys, tempfile, time
import numpy as np
import surgery
from surgery.testing import randomize, with_input
# InnerProduct: its GEMM is OpenBLAS's (a convolution's is oneDNN's, 0020).
layer = ('layer { name: "out" type: "InnerProduct" bottom: "data" top: "out" '
         'inner_product_param { num_output: 256 } }')
with tempfile.TemporaryDirectory() as folder:
    path = pathlib.Path(folder) / "fc.prototxt"
    path.write_text(with_input(layer, (64, 1024)))
    net = surgery.Net(path)
    randomize(net)
    for _ in range(2):
        net.forward(data=np.ones((64, 1024), np.float32))
    start = time.process_time()
    time.sleep(0.08)
    print((time.process_time() - start) * 1e3)
"""


def idle_cpu_ms_after_a_forward(timeout=None):
    """CPU time (ms) the process takes while it sleeps 80 ms after a forward,
    in a child on two BLAS threads whose OPENBLAS_THREAD_TIMEOUT is unset or
    `timeout`. (Earlier tests may leave one thread in this process's
    environment: Dask's nanny writes OPENBLAS_NUM_THREADS=1.)"""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_THREAD_TIMEOUT", "SURGERY_NUM_THREADS")}
    env["OPENBLAS_NUM_THREADS"] = "2"
    if timeout is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = str(timeout)
    run = subprocess.run([sys.executable, "-c", IDLE_CPU_CHILD], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    return float(run.stdout)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="two threads need two CPUs")
def test_blas_threads_sleep_soon_after_a_forward():
    # OpenBLAS's own default (2^28 cycles) spins the idle threads for about
    # 0.1 s; the setting surgery makes at import lets them sleep at once.
    assert idle_cpu_ms_after_a_forward() < 10
    assert idle_cpu_ms_after_a_forward(timeout=28) > 20


OPENMP_POLICY_CHILD = """
import ctypes
import surgery
# The libgomp oneDNN loaded with _core: its settings as it read them.
ctypes.CDLL("libgomp.so.1").omp_display_env(1)
"""


def openmp_spin_count(wait_policy=None):
    """How many times libgomp's idle threads spin before they sleep, as a
    child that imports surgery reads it, OMP_WAIT_POLICY unset or given."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if wait_policy is not None:
        env["OMP_WAIT_POLICY"] = wait_policy
    run = subprocess.run([sys.executable, "-c", OPENMP_POLICY_CHILD], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    return next(int(line.split("=")[1].strip().strip("'")) for line in run.stderr.splitlines()
                if line.strip().startswith("GOMP_SPINCOUNT"))


def test_openmp_threads_sleep_at_once_between_parallel_regions():
    # GNU OpenMP's idle threads spin 300,000 times after each region by
    # default, holding the cores Caffe's own loops need between oneDNN's
    # layers; import surgery has libgomp read PASSIVE (no spinning), unless
    # the environment says otherwise.
    assert openmp_spin_count() == 0
    assert openmp_spin_count("ACTIVE") > 300_000
