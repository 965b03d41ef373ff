"""The memory limit is enforced before memory is taken: each refusal raises
MemoryLimitError while the process's peak resident memory (VmHWM) stays far
below what the refused request would have touched. Each case runs in a fresh
interpreter, so its peak is its own."""

import json
import subprocess
import sys
import textwrap

import pytest

import surgery

LIMIT = 256 << 20

CHILD = textwrap.dedent("""
    import json, sys, numpy as np, surgery

    def peak():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    surgery.set_memory_limit({limit})
    path, action = sys.argv[1], sys.argv[2]
    # A first small net loads what every net needs (Caffe's per-thread state,
    # cuBLAS in a CUDA build), so that is not counted as growth below.
    warm = sys.argv[3]
    surgery.Net(warm).forward(data=np.ones((1, 1, 4, 4), np.float32))
    before = peak()
    try:
        if action == "load":
            surgery.Net(path)
        elif action == "reshape":
            net = surgery.Net(path)
            net.reshape(data=(1, 1, 30000, 30000))
        elif action == "forward":
            net = surgery.Net(path)
            net.forward(data=np.ones((1, 64, 64, 64), np.float32))
        error = None
    except Exception as e:
        error = type(e).__name__
        # The net or library stays usable: a small forward still runs.
        small = {{"reshape": (1, 1, 8, 8), "forward": (1, 64, 2, 2)}}.get(action)
        if small:
            net.forward(data=np.ones(small, np.float32))
    print(json.dumps({{"error": error, "before": before, "after": peak(),
                      "in_use": surgery.memory_in_use()}}))
""").format(limit=LIMIT)

INPUT = 'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}\n'

CASES = {
    # 2^28 weights (1 GiB) and as many biases, filled at construction.
    "parameter_1GiB": ("load", INPUT.format(dims="dim: 1 dim: 1") + """
        layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
                inner_product_param { num_output: 268435456
                                      weight_filler { type: "constant" value: 1 } } }"""),
    # 2^31 - 1 outputs: 8 GiB of weights.
    "num_output_int_max": ("load", INPUT.format(dims="dim: 1 dim: 1") + """
        layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
                inner_product_param { num_output: 2147483647 } }"""),
    "dummy_data_1GiB": ("load", """
        layer { name: "d" type: "DummyData" top: "d"
                dummy_data_param { shape { dim: 1 dim: 256 dim: 1024 dim: 1024 }
                                   data_filler { type: "constant" value: 1 } } }"""),
    # 30000^2 input: 3.4 GiB for the data blob alone.
    "reshape_3GiB": ("reshape", INPUT.format(dims="dim: 1 dim: 1 dim: 8 dim: 8") + """
        layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
                pooling_param { pool: MAX kernel_size: 2 stride: 2 } }"""),
    # Deconvolution's column buffer (1 GiB at 64x64) is allocated in forward.
    "deconvolution_buffer": ("forward", INPUT.format(dims="dim: 1 dim: 64 dim: 2 dim: 2") + """
        layer { name: "up" type: "Deconvolution" bottom: "data" top: "up"
                convolution_param { num_output: 16 kernel_size: 64 } }"""),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_before_memory_is_taken(tmp_path, tiny_prototxt, name):
    action, text = CASES[name]
    path = tmp_path / f"{name}.prototxt"
    path.write_text(text)
    child = subprocess.run([sys.executable, "-c", CHILD, str(path), action, str(tiny_prototxt)],
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-2000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["error"] == "MemoryLimitError", report
    # The refused request was 1 to 8 GiB; the process grew only by what it was
    # allowed (a deconvolution's 16 MiB of weights, numpy's buffers).
    assert report["after"] - report["before"] < 64 << 20, report
    if report["before"] < LIMIT // 2:  # the CPU build: the whole process stays under the limit
        assert report["after"] < LIMIT, report


def test_memory_limit_error_is_a_shape_error_and_a_memory_error():
    assert issubclass(surgery.MemoryLimitError, surgery.ShapeError)
    assert issubclass(surgery.MemoryLimitError, MemoryError)


def test_destroyed_nets_give_their_memory_back(tiny_prototxt):
    before = surgery.memory_in_use()
    net = surgery.Net(tiny_prototxt)
    net.forward(data=__import__("numpy").ones((1, 1, 4, 4)))
    assert surgery.memory_in_use() > before
    del net
    assert surgery.memory_in_use() == before
