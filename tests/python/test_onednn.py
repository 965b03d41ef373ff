"""convolution="onednn" (Debian's oneDNN) against Caffe's own convolution on
the same net: CaffeNet converted (random weights) on a 451 image and a batch,
the choice of algorithm by name, and a process forked after oneDNN ran. The
layer-level checks (strides, pads, dilations, groups, fully connected
sizes, changed weights, thread counts) are in tests/cpp/test_onednn.cpp."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import surgery

CAFFENET_CONVOLUTIONS = ["conv1", "conv2", "conv3", "conv4", "conv5",
                         "fc6-conv", "fc7-conv", "fc8-conv"]


@pytest.mark.slow
def test_caffenet_dense_map_matches_caffe(caffenet_fc):
    image = np.random.default_rng(3).uniform(0, 255, (451, 451, 3)).astype(np.float32)
    maps = {}
    for algorithm in ("caffe", "onednn"):
        caffenet_fc.convolution = algorithm
        maps[algorithm] = surgery.dense_forward(caffenet_fc, image)
    assert caffenet_fc.engine_layers == CAFFENET_CONVOLUTIONS
    assert caffenet_fc.winograd_layers == []
    assert maps["onednn"].shape == maps["caffe"].shape == (8, 8)
    # Eight layers' rounding through a peaked softmax: 1.1e-5 to 1.6e-5
    # measured, Winograd's order (test_winograd.py).
    np.testing.assert_allclose(maps["onednn"].scores, maps["caffe"].scores, atol=4e-5)
    assert (maps["onednn"].argmax == maps["caffe"].argmax).all()
    # A batch of two gives each image's map as one by one does.
    batch = np.stack([image, image[::-1]]).transpose(0, 3, 1, 2).copy()
    together = caffenet_fc.forward(data=batch)["prob"]
    alone = caffenet_fc.forward(data=batch[1:2])["prob"]
    np.testing.assert_allclose(together[1:2], alone, atol=4e-5)
    caffenet_fc.convolution = "caffe"
    assert caffenet_fc.engine_layers == []


def test_algorithm_names(caffenet_fc):
    for name in ("onednn", "winograd", "caffe"):
        caffenet_fc.convolution = name
        assert caffenet_fc.convolution == name
    with pytest.raises(ValueError, match="'caffe', 'winograd' or 'onednn', not 'mkldnn'"):
        caffenet_fc.convolution = "mkldnn"
    assert caffenet_fc.convolution == "caffe"


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
