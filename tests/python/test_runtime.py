"""The binding boundary at run time: threads sharing a net, Ctrl-C during a
forward, fork while another thread is inside one, typed errors for
out-of-range numbers and NUL in paths, NaN scores."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import surgery
from conftest import TINY_NET

# Needs only the installed package and the fixtures: runs against the wheel too.
pytestmark = pytest.mark.wheel

# A net slow enough to be interrupted: many same-size convolutions on a
# large input, weights constant so any two copies compute the same.
SLOW_LAYERS = 40
SLOW_NET = 'layer { name: "data" type: "Input" top: "data" ' \
    'input_param { shape { dim: 1 dim: 32 dim: 8 dim: 8 } } }\n' + "".join(
        f'layer {{ name: "c{i}" type: "Convolution" bottom: "{"data" if i == 0 else f"c{i - 1}"}" '
        f'top: "c{i}" convolution_param {{ num_output: 32 kernel_size: 3 pad: 1 '
        f'weight_filler {{ type: "constant" value: 0.01 }} }} }}\n'
        for i in range(SLOW_LAYERS))


def _run_child(code, timeout=120):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def tiny(tiny_prototxt):
    net = surgery.Net(tiny_prototxt)
    net.params["conv"][0][...] = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2)
    net.params["conv"][1][...] = 0.5
    net.params["fc"][0][...] = np.arange(18, dtype=np.float32).reshape(2, 9) / 10
    net.params["fc"][1][...] = 0
    return net


def test_threads_sharing_a_net_get_single_threaded_results(tiny):
    images = [np.full((1, 1, 4, 4), k, np.float32) for k in range(4)]
    expected = [tiny.forward(data=image)["fc"].copy() for image in images]
    errors = []

    def work(t):
        try:
            for round in range(150):
                k = (t + round) % 4
                step = round % 4
                if step == 0:
                    view = tiny.blobs["data"]
                    assert view.shape[1:] == (1, 4, 4)
                elif step == 1:
                    # fc's memory is new after each growing reshape: any head.
                    assert tiny.head("fc") in ("uninitialized", "cpu", "synced", "gpu")
                    assert tiny.param_heads("conv") == ["cpu", "cpu"]
                elif step == 2:
                    tiny.reshape(data=(2, 1, 4, 4))
                    assert tiny.inputs == ["data"] and len(tiny.layers) == 3
                else:
                    np.testing.assert_array_equal(tiny.forward(data=images[k])["fc"], expected[k])
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]


def test_ctrl_c_stops_a_forward_between_layers_and_the_net_stays_usable(tmp_path):
    proto = tmp_path / "slow.prototxt"
    proto.write_text(SLOW_NET)
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import signal
        import sys
        import numpy as np
        import surgery
        # Python's Ctrl-C handler, as in a terminal: a shell's background job
        # (the GPU kit's test shards) starts with SIGINT ignored, and Python
        # then installs none, so the signal would go unseen.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        net = surgery.Net({str(proto)!r})
        small = np.ones((1, 32, 8, 8), np.float32)
        expected = net.forward(data=small)["c{SLOW_LAYERS - 1}"]
        big = np.ones((1, 32, 256, 256), np.float32)
        net.reshape(data=big.shape)
        print("go", flush=True)
        try:
            net.forward(data=big)
            print("finished")
        except KeyboardInterrupt:
            # Stopped inside the pass: the last layer's output was never written.
            print("interrupted", net.head("c{SLOW_LAYERS - 1}"))
        np.testing.assert_array_equal(net.forward(data=small)["c{SLOW_LAYERS - 1}"], expected)
        print("usable")
        """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "go"
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert out.split() == ["interrupted", "uninitialized", "usable"], (out, err)


@pytest.mark.slow
@pytest.mark.parametrize("convolution", ["caffe", "winograd", "onednn", "fastest"])
def test_a_storm_of_signals_during_forwards_changes_no_bit(convolution):
    # A signal handled while a kernel runs must not touch the kernel's memory.
    # oneDNN's JIT sgemm points rsp at a heap workspace, so a signal arriving
    # in it writes its frame into the heap (uxlfoundation/oneDNN#4845; Debian's
    # 2.6 has it). Recipe patch 0020 sends Caffe's convolutions there, in a
    # caffe::OnednnSection that blocks such signals: without the block, this
    # storm aborted every time. Hundreds to thousands of signals, in a child.
    run = _run_child(f"""
        import signal, time
        import numpy as np
        import surgery
        from surgery.testing import fixtures, randomize
        net = surgery.Net(fixtures() / "bvlc_reference_caffenet" / "deploy.prototxt")
        randomize(net, seed=1)
        surgery.fully_convolutionalize(net)
        net.convolution = {convolution!r}
        x = np.random.default_rng(0).uniform(-50, 50, (1, 3, 227, 227)).astype(np.float32)
        net.forward(data=x)
        expected = net.blobs["fc8-conv"].copy()
        handled = [0]
        signal.signal(signal.SIGALRM, lambda *_: handled.__setitem__(0, handled[0] + 1))
        signal.setitimer(signal.ITIMER_REAL, 0.0003, 0.0003)
        forwards, end = 0, time.monotonic() + 3
        while time.monotonic() < end:
            net.forward(data=x)
            assert np.array_equal(net.blobs["fc8-conv"], expected), "a forward changed"
            forwards += 1
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        print("ok", forwards, handled[0])
        """)
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    _, forwards, handled = run.stdout.split()
    assert int(forwards) > 1 and int(handled) > 100, run.stdout


@pytest.mark.slow
def test_fork_while_another_thread_is_inside_forward_does_not_hang_the_child(tmp_path):
    proto = tmp_path / "slow.prototxt"
    proto.write_text(SLOW_NET)
    run = _run_child(f"""
        import os, sys, threading, time
        import numpy as np
        import surgery
        busy = surgery.Net({str(proto)!r})
        other = surgery.Net({str(proto)!r})
        big = np.ones((1, 32, 256, 256), np.float32)
        busy.reshape(data=big.shape)
        inside = threading.Event()
        def work():
            inside.set()
            busy.forward(data=big)
        thread = threading.Thread(target=work)
        thread.start()
        inside.wait()
        time.sleep(0.3)  # well inside the forward
        pid = os.fork()
        if pid == 0:
            try:
                busy.forward(data=big)
                print("child: ran", flush=True)
            except surgery.SurgeryError as error:
                print("child: refused", "forked" in str(error), flush=True)
            out = other.forward(data=np.ones((1, 32, 8, 8), np.float32))
            print("child: other net", out["c{SLOW_LAYERS - 1}"].shape, flush=True)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        thread.join()
        print("parent: child exit", os.waitstatus_to_exitcode(status))
        """, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "child: refused True", "child: other net (1, 32, 8, 8)", "parent: child exit 0"], run


@pytest.mark.parametrize("dim", [-1, 0, 2**31, 2**64, 1.5])
def test_out_of_range_dimensions_are_shape_errors(tiny, dim):
    with pytest.raises(surgery.ShapeError):
        tiny.reshape(data=(1, 1, dim, 4))
    with pytest.raises(surgery.ShapeError):
        surgery.fully_convolutionalize(tiny, input_shape=(1, 1, dim, 4))
    assert tiny.blobs["data"].shape == (1, 1, 4, 4)


@pytest.mark.parametrize("limit", [-1, 2**64])
def test_out_of_range_memory_limits_are_value_errors(limit):
    before = surgery.memory_limit()
    with pytest.raises(ValueError):
        surgery.set_memory_limit(limit)
    assert surgery.memory_limit() == before


def test_nul_in_a_path_is_refused(tmp_path, tiny):
    (tmp_path / "a").write_text(TINY_NET)  # what a C call would open instead
    path = str(tmp_path / "a") + "\x00b"
    with pytest.raises(surgery.FileError, match="NUL"):
        surgery.Net(path)
    with pytest.raises(surgery.FileError, match="NUL"):
        tiny.save(path)
    assert (tmp_path / "a").read_text() == TINY_NET


def test_nan_scores_warn_and_flag_the_map(tiny_prototxt):
    net = surgery.Net(tiny_prototxt)
    surgery.fully_convolutionalize(net)
    net.params["conv"][0][...] = np.nan
    with pytest.warns(surgery.NumericWarning, match="NaN"):
        dense = surgery.dense_forward(net, np.zeros((6, 6), np.float32))
    assert not dense.finite and np.isnan(dense.scores).all()
    net.params["conv"][0][...] = 1
    assert surgery.dense_forward(net, np.zeros((6, 6), np.float32)).finite
