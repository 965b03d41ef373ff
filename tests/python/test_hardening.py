"""Hardening, bounded for CI: a fuzz campaign, kills during saves, a full
disk, threads, and memory that settles. The long runs are the scripts in
hardening/ (see docs/internals/performance.md)."""

import pathlib
import sys
import threading

import numpy as np
import pytest

import surgery

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "hardening"))


@pytest.mark.slow
def test_bounded_fuzz_campaign_has_no_crash_hang_or_untyped_error():
    from fuzz import campaign
    table, findings = campaign(cases=600, seed=7, timeout=30)
    assert not findings, findings[:5]
    outcomes = {kind for (_, kind, _) in table}
    assert "error" in outcomes and "ok" in outcomes  # the campaign reaches both


@pytest.mark.slow
def test_kill_during_save_never_leaves_a_broken_file():
    from kill_during_save import full_disk_trial, kill_trials
    outcomes = kill_trials(8, seed=3)
    assert outcomes["corrupt"] == 0
    assert outcomes["old"] + outcomes["new"] == 8
    disk = full_disk_trial()
    assert disk["exit"] == 3 and "File too large" in disk["message"]
    assert disk["target"] == "old" and disk["temporary files left"] == 0


@pytest.mark.slow
def test_memory_settles_over_repeated_use():
    from soak import soak
    marks = soak(300, checkpoints=(100, 300))
    assert marks[300] - marks[100] < 8.0, marks


def test_huge_input_refused_before_allocation(lenet):
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    surgery.set_memory_limit(4 << 30)
    try:
        # conv2 im2col alone: 500 x 1494 x 1494 floats = 4.2 GiB
        with pytest.raises(surgery.ShapeError, match="memory limit"):
            net.reshape(data=(1, 1, 3000, 3000))
        # Resized to 3000 x 3000, the image cannot be tiled (size= resizes the
        # whole); without size= an image this large is run in tiles (test_tiles.py).
        with pytest.raises(surgery.ShapeError, match="memory limit"):
            surgery.dense_forward(net, np.zeros((30, 30), np.float32),
                                  preprocess=surgery.Preprocess(size=(3000, 3000)))
    finally:
        surgery.set_memory_limit(0)
    assert net.blobs["data"].shape == (64, 1, 28, 28)
    old = surgery.memory_limit()
    try:
        surgery.set_memory_limit(1 << 20)
        with pytest.raises(surgery.ShapeError, match="memory limit"):
            surgery.Net(*lenet)
    finally:
        surgery.set_memory_limit(0)
    assert surgery.memory_limit() == old


def test_threads_with_their_own_nets_match_one_thread(lenet, mnist):
    images, _ = mnist
    canvases = [np.pad(images[k] / 255.0, 8).astype(np.float32) for k in range(4)]
    expected = []
    for canvas in canvases:
        net = surgery.Net(*lenet)
        surgery.fully_convolutionalize(net)
        expected.append(surgery.dense_forward(net, canvas).scores)
    results = [None] * 4

    def work(k):
        net = surgery.Net(*lenet)
        surgery.fully_convolutionalize(net)
        for _ in range(5):
            results[k] = surgery.dense_forward(net, canvases[k]).scores
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_one_net_shared_by_threads_is_serialized(lenet, mnist):
    images, _ = mnist
    net = surgery.Net(*lenet)
    batches = [(images[k:k + 8] / 255.0).astype(np.float32)[:, None] for k in range(0, 32, 8)]
    expected = [net.forward(data=b)["prob"] for b in batches]
    errors = []

    def work(k):
        for _ in range(20):
            got = net.forward(data=batches[k])["prob"]
            if not np.array_equal(got, expected[k]):
                errors.append(k)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
