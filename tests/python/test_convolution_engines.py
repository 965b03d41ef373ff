"""convolution="onednn" (Debian's oneDNN) and "fastest" (each layer by the
engine measured fastest on it) against Caffe's own convolution on the same
net: CaffeNet converted (random weights) on a 451 image and a batch, the
memory limit, a process forked after oneDNN ran, the CLI. The
layer-level checks (strides, pads, dilations, groups, fully connected
sizes, changed weights, thread counts) are in tests/cpp/test_onednn.cpp."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import surgery
from conftest import fixture

CONV = """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 512 dim: 12 dim: 12 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "out"
        convolution_param { num_output: 512 kernel_size: 3 pad: 1 } }
"""
CAFFENET_CONVOLUTIONS = ["conv1", "conv2", "conv3", "conv4", "conv5",
                         "fc6-conv", "fc7-conv", "fc8-conv"]


@pytest.mark.slow
def test_caffenet_dense_map_matches_caffe(caffenet_fc):
    image = np.random.default_rng(3).uniform(0, 255, (451, 451, 3)).astype(np.float32)
    maps, scores = {}, {}
    for algorithm in ("caffe", "onednn"):
        caffenet_fc.convolution = algorithm
        maps[algorithm] = surgery.dense_forward(caffenet_fc, image)
        scores[algorithm] = caffenet_fc.blobs["fc8-conv"].copy()
    assert caffenet_fc.engine_layers == CAFFENET_CONVOLUTIONS
    assert caffenet_fc.winograd_layers == []
    assert maps["onednn"].shape == maps["caffe"].shape == (8, 8)
    # Eight layers' rounding: the class scores 2.1e-6 to 2.3e-6 of their
    # scale apart (measured, with and without recipe patch 0020's GEMM in
    # Caffe's layers). A peaked softmax (logits up to 227) amplifies it
    # where a cell's two best classes are close: 2.7e-5 to 4.6e-5 measured
    # on the probabilities (0.804 and 0.196 at one cell), within Winograd's
    # map bound (test_winograd.py).
    scale = np.abs(scores["caffe"]).max()
    np.testing.assert_allclose(scores["onednn"], scores["caffe"], atol=1e-5 * scale)
    np.testing.assert_allclose(maps["onednn"].scores, maps["caffe"].scores, atol=1e-4)
    assert (maps["onednn"].argmax == maps["caffe"].argmax).all()
    # A batch of two gives each image's map as one by one does.
    batch = np.stack([image, image[::-1]]).transpose(0, 3, 1, 2).copy()
    together = caffenet_fc.forward(data=batch)["prob"]
    alone = caffenet_fc.forward(data=batch[1:2])["prob"]
    np.testing.assert_allclose(together[1:2], alone, atol=4e-5)
    caffenet_fc.convolution = "caffe"
    assert caffenet_fc.engine_layers == []


def class_scores(net, x):
    net.forward(data=x)
    return net.blobs["fc8-conv"].copy()


@pytest.mark.slow
def test_fastest_takes_one_engine_a_layer_within_the_engines_rounding(caffenet_fc):
    x = np.random.default_rng(6).uniform(-100, 100, (1, 3, 451, 451)).astype(np.float32)
    caffenet_fc.convolution = "caffe"
    exact = class_scores(caffenet_fc, x)
    caffenet_fc.convolution = "fastest"
    first = class_scores(caffenet_fc, x)  # measures, then chooses
    chosen = caffenet_fc.engine_layers
    assert set(chosen) <= set(CAFFENET_CONVOLUTIONS)
    # Eight layers' rounding, each engine's within 4e-5 of its output's
    # scale (Winograd's bound, the widest): 2e-6 to 4e-6 measured.
    assert np.abs(first - exact).max() < 2e-5 * np.abs(exact).max()
    again = class_scores(caffenet_fc, x)  # the choice kept: the same bits
    np.testing.assert_array_equal(again, first)
    assert caffenet_fc.engine_layers == chosen


@pytest.mark.parametrize("algorithm, copy", [("winograd", "36 MiB"), ("onednn", "9 MiB")])
def test_the_engines_copy_is_held_to_the_memory_limit(tmp_path, algorithm, copy):
    # 512 -> 512 channels, 3x3: 9 MiB of weights; Winograd's transformed
    # copy 4x that, oneDNN's packed one the same size.
    path = tmp_path / "conv.prototxt"
    path.write_text(CONV)
    net = surgery.Net(path)
    x = np.ones((1, 512, 12, 12), np.float32)
    try:
        surgery.set_memory_limit(surgery.memory_in_use() + (6 << 20))
        expected = net.forward(data=x)["out"]
        net.convolution = algorithm
        with pytest.raises(surgery.MemoryLimitError, match=f"layer 'conv'.*'{algorithm}'.*{copy}"):
            net.forward(data=x)
        net.convolution = "caffe"  # usable again, the copies dropped
        np.testing.assert_array_equal(net.forward(data=x)["out"], expected)
    finally:
        surgery.set_memory_limit(0)


FORK_AFTER_ONEDNN = textwrap.dedent("""
    import os, sys
    import numpy as np
    import surgery
    from surgery.testing import fixtures, randomize
    net = surgery.Net(fixtures() / "bvlc_reference_caffenet" / "deploy.prototxt")
    randomize(net)
    surgery.fully_convolutionalize(net)
    net.convolution = "onednn"
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 227, 227)).astype(np.float32)
    net.forward(data=x)
    parent = net.blobs["fc8-conv"].copy()
    pid = os.fork()
    if pid == 0:
        net.forward(data=x)
        child = net.blobs["fc8-conv"]
        gap = np.abs(child - parent).max() / np.abs(parent).max()
        os._exit(0 if gap < 1e-5 and net.engine_layers[-1] == "fc8-conv" else 3)
    sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
""")


def test_a_process_forked_after_onednn_ran_runs_it_too():
    # GNU OpenMP's worker threads do not survive a fork: a child that asked
    # them for a parallel region would wait forever. It runs on one thread.
    done = subprocess.run([sys.executable, "-c", FORK_AFTER_ONEDNN], timeout=120,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_cli_dense_with_onednn(lenet, tmp_path):
    digit = fixture("mnist_t10k", "digits", "t10k_00000_label7.png")
    result = subprocess.run([sys.executable, "-m", "surgery.cli", "dense", *map(str, lenet),
                             str(digit), "--raw-scale", "0.99609375", "--convolution", "onednn"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "7 [7] 1.0000 at 0,0-28,28 (cell 0,0)" in result.stdout
