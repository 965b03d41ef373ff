"""Modes, devices and where blobs live. GPU tests skip without a CUDA build
and device (CI has none); they run on a GPU machine."""

import contextlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import surgery
from conftest import fixture
from surgery import pinned
from surgery.pinned import staged_batch
from surgery.testing import random_model, randomize, with_input

# `pytest -m gpu` selects the tests that need a device; without one they skip.
GPU_MARKS = (pytest.mark.gpu, pytest.mark.skipif(
    not surgery.gpu_available(), reason="no CUDA device, or libcaffe built without CUDA"))


def needs_gpu(test):
    for mark in GPU_MARKS:
        test = mark(test)
    return test


@contextlib.contextmanager
def gpu_mode():
    """This thread in GPU mode, back to CPU mode (TF32 off) however it ends."""
    surgery.set_mode("gpu")
    try:
        yield
    finally:
        surgery.set_tf32(False)
        surgery.set_mode("cpu")


def test_cpu_mode_and_clear_errors_without_gpu():
    surgery.set_mode("cpu")
    assert surgery.mode() == "cpu"
    with pytest.raises(surgery.SurgeryError, match="'cpu' or 'gpu'"):
        surgery.set_mode("tpu")
    if not surgery.gpu_available():
        with pytest.raises(surgery.SurgeryError, match="CUDA"):
            surgery.set_mode("gpu")
        with pytest.raises(surgery.SurgeryError, match="CUDA|device"):
            surgery.set_device(0)
        with pytest.raises(surgery.SurgeryError, match="TF32 is a GPU setting"):
            surgery.set_tf32(True)
        surgery.set_tf32(False)
        assert surgery.mode() == "cpu" and not surgery.tf32()
        with pytest.raises(surgery.SurgeryError, match="page-locked memory .* there is none"):
            surgery.pinned_empty((2, 3))


def test_a_batch_is_staged_in_ordinary_memory_in_cpu_mode(lenet):
    """staged_batch stacks the parts; outside GPU mode it takes no page-locked
    memory and keeps nothing for the net."""
    net = surgery.Net(*lenet)
    parts = [np.full((1, 28, 28), k, np.float32) for k in range(3)]
    with staged_batch(net, parts) as batch:
        np.testing.assert_array_equal(batch, np.stack(parts))
        assert not surgery._core.is_pinned(batch)
    assert net not in pinned._idle


@needs_gpu
def test_only_gpu_work_makes_a_cuda_context(tiny_prototxt):
    """libcaffe patch cuda/0005: a process that converts and runs nets on the
    CPU, in two threads, holds no CUDA context (no device memory, forks that
    exit fast); the first GPU forward makes one. The driver says which
    (cuDevicePrimaryCtxGetState), asked in a fresh process."""
    code = textwrap.dedent(f"""
        import ctypes, threading
        import numpy as np
        import surgery
        cuda = ctypes.CDLL("libcuda.so.1")
        def context_active():
            device, flags, active = ctypes.c_int(), ctypes.c_uint(), ctypes.c_int()
            assert cuda.cuInit(0) == 0 and cuda.cuDeviceGet(ctypes.byref(device), 0) == 0
            assert cuda.cuDevicePrimaryCtxGetState(device, ctypes.byref(flags),
                                                   ctypes.byref(active)) == 0
            return bool(active.value)
        net = surgery.Net({str(tiny_prototxt)!r})
        surgery.fully_convolutionalize(net)
        x = np.ones((1, 1, 6, 6), np.float32)
        cpu_map = net.forward(data=x)["fc-conv"]
        thread = threading.Thread(target=lambda: net.forward(data=x))
        thread.start()
        thread.join()
        print("cpu", context_active())
        surgery.set_mode("gpu")
        np.testing.assert_allclose(net.forward(data=x)["fc-conv"], cpu_map, atol=1e-5)
        print("gpu", context_active())
        """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.stdout.split() == ["cpu", "False", "gpu", "True"], (run.stdout, run.stderr)


@needs_gpu
def test_surgery_moves_no_param_data(lenet):
    """Heads before and after surgery are the same: surgery reads shapes, not
    data. (On the CPU every head is "cpu" either way, so only a GPU can tell.)"""
    net = surgery.Net(*lenet)
    with gpu_mode():
        net.forward(data=np.zeros((64, 1, 28, 28), np.float32))  # params go to the GPU
        before = {name: net.param_heads(name) for name in ("conv1", "ip1", "ip2")}
        assert all(h in ("gpu", "synced") for heads in before.values() for h in heads)
        surgery.fully_convolutionalize(net)
        after = {"conv1": net.param_heads("conv1"), "ip1": net.param_heads("ip1-conv"),
                 "ip2": net.param_heads("ip2-conv")}
    assert before == after


@pytest.fixture
def caffenet_like(tmp_path):
    path = tmp_path / "n.prototxt"
    path.write_text(with_input("""
      layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
              convolution_param { num_output: 8 kernel_size: 3 stride: 2 } }
      layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"
              inner_product_param { num_output: 6 transpose: true } }
      layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }""", (1, 3, 15, 15)))
    net = surgery.Net(path)
    randomize(net, seed=2)
    return net


@needs_gpu
def test_gpu_surgery_keeps_params_on_the_device_and_matches_cpu(caffenet_like):
    x = np.random.default_rng(0).standard_normal((1, 3, 31, 31)).astype(np.float32)
    cpu = surgery.Net(caffenet_like.source)
    for name, blobs in caffenet_like.params.items():
        for src, dst in zip(blobs, cpu.params[name]):
            dst[...] = src
    surgery.fully_convolutionalize(cpu)
    expected = cpu.forward(data=x)["prob"]
    with gpu_mode():
        caffenet_like.forward(data=np.zeros((1, 3, 15, 15), np.float32))  # params go to the GPU
        assert all(h in ("gpu", "synced") for h in caffenet_like.param_heads("fc"))
        heads = {n: caffenet_like.param_heads(n) for n in ("conv", "fc")}
        surgery.fully_convolutionalize(caffenet_like)
        # A device-to-host copy would turn a "gpu" head into "synced"; none may.
        # conv is untouched; fc's weights were transposed on the device (a
        # device write: "gpu"), its bias kept.
        assert caffenet_like.param_heads("conv") == heads["conv"]
        fc = caffenet_like.param_heads("fc-conv")
        assert fc[0] == "gpu" and fc[1] == heads["fc"][1]
        got = caffenet_like.forward(data=x)["prob"]
    np.testing.assert_allclose(got, expected, atol=1e-4)


@needs_gpu
def test_gpu_caffenet_dense_map_matches_cpu(tmp_path):
    """The issue's proof from Python: converted CaffeNet (random weights), one
    451x451 image, the 8x8 probability map on the GPU equals the CPU's."""
    proto, model = random_model(fixture("bvlc_reference_caffenet", "deploy.prototxt"), tmp_path)
    image = np.random.default_rng(0).uniform(0, 255, (451, 451, 3)).astype(np.float32)
    steps = dict(preprocess=surgery.Preprocess(mean=[104, 117, 123], channel_swap=(2, 1, 0)),
                 blobs=("fc7-conv",))
    converted = surgery.fully_convolutionalize(proto, model).net
    expected = surgery.dense_forward(converted, image, **steps)
    with gpu_mode():
        net = surgery.fully_convolutionalize(proto, model).net
        got = surgery.dense_forward(net, image, **steps)
        heads = [h for name in ("conv1", "fc6-conv", "fc8-conv") for h in net.param_heads(name)]
        hidden, output = net.head("fc7-conv"), net.head("prob")
    assert got.scores.shape == (1000, 8, 8)
    np.testing.assert_allclose(got.scores, expected.scores, atol=1e-4)
    np.testing.assert_allclose(got.features("fc7-conv"), expected.features("fc7-conv"),
                               rtol=1e-3, atol=1e-3)
    assert set(heads) == {"synced"}  # loaded on the host, used on the GPU
    assert hidden == "gpu"  # read back as a copy: the device copy stays current
    assert output == "gpu"  # the output was copied to the caller, not synced


@needs_gpu
def test_pinned_arrays_are_page_locked_and_counted(tmp_path):
    """surgery.pinned_empty: page-locked (the driver says so), counted against
    the memory limit while it lives, refused past it; a forward from it
    equals one from ordinary memory."""
    before = surgery.memory_in_use()
    a = surgery.pinned_empty((1, 3, 451, 451))
    assert a.dtype == np.float32 and a.shape == (1, 3, 451, 451) and a.flags.writeable
    assert surgery._core.is_pinned(a) and not surgery._core.is_pinned(np.empty(4, np.float32))
    assert surgery.memory_in_use() - before >= a.nbytes
    view = a[0, 1]
    del a  # the view keeps the memory alive
    view[:] = 1
    del view
    assert surgery.memory_in_use() == before
    limit = surgery.memory_limit()
    surgery.set_memory_limit(before + (1 << 20))
    try:
        with pytest.raises(surgery.MemoryLimitError, match="page-locked host memory"):
            surgery.pinned_empty((1 << 20,))
    finally:
        surgery.set_memory_limit(limit)
    proto, model = random_model(fixture("bvlc_reference_caffenet", "deploy.prototxt"), tmp_path)
    x = np.random.default_rng(1).uniform(-50, 50, (1, 3, 451, 451)).astype(np.float32)
    staged = surgery.pinned_empty(x.shape)
    staged[...] = x
    with gpu_mode():
        net = surgery.fully_convolutionalize(proto, model).net
        plain = net.forward(data=x)["prob"]
        from_pinned = net.forward(data=staged)["prob"]
    np.testing.assert_array_equal(from_pinned, plain)


@needs_gpu
def test_dense_forward_stages_its_batch_in_page_locked_memory(lenet):
    """In GPU mode dense_forward stacks a batch into a page-locked buffer that
    the net keeps for its next batch of that shape, and gives the CPU's maps."""
    images = [np.random.default_rng(k).uniform(0, 1, (40, 36)).astype(np.float32)
              for k in range(3)]
    expected = surgery.dense_forward(surgery.fully_convolutionalize(*lenet).net, images)
    with gpu_mode():
        net = surgery.fully_convolutionalize(*lenet).net
        got = surgery.dense_forward(net, images)
        kept = pinned._idle[net]
        assert surgery._core.is_pinned(kept) and kept.shape == (3, 1, 40, 36)
        surgery.dense_forward(net, images)
        assert pinned._idle[net] is kept  # reused, not allocated again
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.scores, e.scores, atol=1e-5)


@needs_gpu
def test_tf32_is_opt_in_and_close_to_float(tmp_path):
    proto, model = random_model(fixture("bvlc_reference_caffenet", "deploy.prototxt"), tmp_path)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 451, 451)).astype(np.float32)
    with gpu_mode():
        net = surgery.fully_convolutionalize(proto, model).net
        assert not surgery.tf32()
        exact = net.forward(data=x)["prob"]
        surgery.set_tf32(True)
        assert surgery.tf32()
        surgery.set_device(0)  # a new cuBLAS handle: the choice must survive it
        assert surgery.tf32()
        fast = net.forward(data=x)["prob"]
    # TF32 rounds GEMM inputs to 10-bit mantissas: close, not equal. Rounding
    # only the weights and the image so, on the CPU, moves these
    # probabilities (max 0.36) by up to 5e-4; TF32 rounds every layer's input.
    np.testing.assert_allclose(fast, exact, atol=5e-3)


@needs_gpu
def test_winograd_is_a_cpu_choice_the_gpu_runs_as_caffe(caffenet_fc):
    x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 451, 451)).astype(np.float32)
    with gpu_mode():
        caffenet_fc.convolution = "caffe"
        caffe = caffenet_fc.forward(data=x)["prob"]
        caffenet_fc.convolution = "winograd"
        winograd = caffenet_fc.forward(data=x)["prob"]
        assert caffenet_fc.winograd_layers == []
        caffenet_fc.convolution = "caffe"
    np.testing.assert_array_equal(winograd, caffe)
