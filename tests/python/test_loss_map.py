"""The loss map is window training done once per image: on LeNet (no
padding), the dense loss and every weight gradient equal the original
classifier's, run on each labelled cell's window with that cell's label
(ignored cells left out, the same mean), to 1e-4 relative; on a tiny net,
the loss equals a numpy softmax cross-entropy over the map and its
gradients equal finite differences of it."""

import os
import pathlib
import sys

import numpy as np
import pytest

import surgery
from surgery import _core
from surgery.loss_map import (IGNORE, definition_text, train_definition, trainer,
                              with_new_head)
from surgery.window_labels import window_labels

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "hardening"))
from forkrun import run_isolated  # noqa: E402

SOLVER = 'type: "SGD" base_lr: 0.01 momentum: 0.9 lr_policy: "fixed"'
CLASSES = 11  # ten digits and background


def canvas(mnist, rng, shape=(56, 84), digits=3):
    """MNIST digits pasted on a blank canvas at random places, and their boxes."""
    images, labels = mnist
    out = np.zeros(shape, np.float32)
    boxes = []
    for _ in range(digits):
        y, x = rng.integers(0, shape[0] - 27), rng.integers(0, shape[1] - 27)
        n = rng.integers(len(images))
        out[y:y + 28, x:x + 28] = np.maximum(out[y:y + 28, x:x + 28], images[n] / 255.0)
        boxes.append((x, y, x + 28, y + 28, int(labels[n])))
    return out, boxes


def gradients_by_layer(train, batch):
    loss, grads = train.gradients(batch)
    return loss, {layer: blobs for layer, blobs in grads}


def test_dense_gradient_is_the_sum_of_the_window_gradients(lenet, mnist):
    rng = np.random.default_rng(3)
    image, boxes = canvas(mnist, rng)
    original = surgery.Net(str(lenet[0]), str(lenet[1]))
    converted = surgery.fully_convolutionalize(str(lenet[0]), str(lenet[1]))
    renamed = {layer.new_name: layer.old_name for layer in converted.layers}
    head = {"head": [rng.normal(0, 0.05, (CLASSES, 500)).astype(np.float32),
                     rng.normal(0, 0.05, CLASSES).astype(np.float32)]}
    dense_weights = {name: converted.net.params[name] for name in converted.net.params}
    crop_weights = {name: original.params[name] for name in original.params}

    labels = window_labels(converted.net, image.shape, boxes, background=10)
    assert (labels == IGNORE).any() and (labels == 10).any() and (labels < 10).sum() >= 3
    dense_deploy = with_new_head(definition_text(converted.net), CLASSES, "head")
    dense = trainer(SOLVER, train_definition(dense_deploy, (1, 1, *image.shape), labels.shape),
                    {**dense_weights, **head})
    dense_loss, dense_grads = gradients_by_layer(
        dense, {"data": image[None, None], "label": labels[None].astype(np.float32)})

    cells = np.argwhere(labels != IGNORE)
    crops = np.stack([image[4 * i:4 * i + 28, 4 * j:4 * j + 28] for i, j in cells])[:, None]
    crop_deploy = with_new_head(definition_text(original), CLASSES, "head")
    crop = trainer(SOLVER, train_definition(crop_deploy, crops.shape, ()),
                   {**crop_weights, **head})
    crop_loss, crop_grads = gradients_by_layer(
        crop, {"data": crops, "label": labels[labels != IGNORE].astype(np.float32)})

    assert dense_loss == pytest.approx(crop_loss, rel=1e-5)
    assert set(renamed.get(name, name) for name in dense_grads) == set(crop_grads)
    for name, blobs in dense_grads.items():
        for got, want in zip(blobs, crop_grads[renamed.get(name, name)]):
            assert np.abs(want).max() > 0
            np.testing.assert_allclose(got.ravel(), want.ravel(), rtol=1e-4,
                                       atol=1e-4 * np.abs(want).max())


TINY = """name: "tiny"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 2 dim: 10 dim: 10 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "gaussian" std: 0.5 }
                            bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "tanh" type: "TanH" bottom: "conv1" top: "conv1" }
layer { name: "score" type: "Convolution" bottom: "conv1" top: "score"
        convolution_param { num_output: 3 kernel_size: 2 stride: 2 weight_filler { type: "gaussian" std: 0.5 }
                            bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "prob" type: "Softmax" bottom: "score" top: "prob" }
"""


def test_tiny_loss_map_matches_numpy_and_finite_differences(tmp_path):
    rng = np.random.default_rng(7)
    image = rng.normal(size=(1, 2, 10, 10)).astype(np.float32)
    labels = rng.integers(-1, 3, size=(1, 4, 4)).astype(np.float32)  # -1: ignored
    train = _core.Trainer(SOLVER, train_definition(TINY, image.shape, (4, 4)))
    batch = {"data": image, "label": labels}
    loss, grads = train.gradients(batch)

    path = tmp_path / "tiny.prototxt"
    path.write_text(TINY)
    deploy = surgery.Net(str(path))
    for layer, blobs in train.params():
        for k, blob in enumerate(blobs):
            deploy.params[layer][k][...] = blob
    scores = deploy.forward(data=image)["prob"][0]
    valid = labels[0] != IGNORE
    picked = np.take_along_axis(scores, np.clip(labels[0], 0, None).astype(int)[None], 0)[0]
    assert loss == pytest.approx(-np.log(picked[valid]).mean(), rel=1e-5)

    eps = 1e-2
    for (layer, blobs), (_, grad_blobs) in zip(train.params(), grads):
        for k, (blob, grad) in enumerate(zip(blobs, grad_blobs)):
            for index in map(tuple, rng.integers(0, blob.shape, size=(4, blob.ndim))):
                shifted = []
                for sign in (1, -1):
                    moved = blob.copy()
                    moved[index] += sign * eps
                    train.set_param(layer, k, moved)
                    shifted.append(train.gradients(batch)[0])
                train.set_param(layer, k, blob)
                numeric = (shifted[0] - shifted[1]) / (2 * eps)
                assert grad[index] == pytest.approx(numeric, rel=2e-3, abs=2e-4), (layer, k, index)


def tiny_batches(seed, count=4):
    """Inputs and label maps for TINY's train net (10 x 10 in, 4 x 4 cells)."""
    rng = np.random.default_rng(seed)
    return [{"data": rng.normal(size=(1, 2, 10, 10)).astype(np.float32),
             "label": rng.integers(-1, 3, size=(1, 4, 4)).astype(np.float32)}
            for _ in range(count)]


def straight_and_parted(net, batches, folder):
    """Two trainers of `net` seeded alike (the same fillers): one stepped
    through every batch, one stopped after two and snapshotted. Returns
    (the straight one's losses, the straight one, the stopped one,
    caffemodel, solverstate)."""
    seeded = SOLVER + " random_seed: 5"
    straight = _core.Trainer(seeded, net)
    losses = [straight.step(b) for b in batches]
    parted = _core.Trainer(seeded, net)
    parted.step(batches[0])
    parted.step(batches[1])
    model, state = str(folder / "a.caffemodel"), str(folder / "a.solverstate")
    parted.snapshot(model, state)
    return losses, straight, parted, model, state


def test_snapshots_restore_exactly_and_refuse_another_net(tmp_path):
    batches = tiny_batches(2)
    net = train_definition(TINY, (1, 2, 10, 10), (4, 4))
    losses, straight, _, model, state = straight_and_parted(net, batches, tmp_path)
    resumed = _core.Trainer(SOLVER, net)  # other random weights, and no momentum
    resumed.restore(model, state)
    assert resumed.iteration == 2
    assert [resumed.step(b) for b in batches[2:]] == losses[2:]  # momentum restored too
    for (_, a), (_, b) in zip(straight.params(), resumed.params()):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)

    wider = _core.Trainer(SOLVER, train_definition(TINY.replace("num_output: 4", "num_output: 5"),
                                                   (1, 2, 10, 10), (4, 4)))
    before = wider.params()
    with pytest.raises(surgery.ShapeError, match=r"a.solverstate.: history blob 0 is .*a snapshot of another net"):
        wider.restore(model, state)
    for (_, a), (_, b) in zip(before, wider.params()):
        np.testing.assert_array_equal(a[0], b[0])  # refused before anything changed
    (tmp_path / "cut.solverstate").write_bytes((tmp_path / "a.solverstate").read_bytes()[:-7])
    with pytest.raises(surgery.ParseError, match="cut.solverstate.*truncated"):
        resumed.restore(model, str(tmp_path / "cut.solverstate"))
    os.mkfifo(tmp_path / "fifo")  # in a child: a regression would wait for a writer forever
    outcome = run_isolated(lambda: resumed.restore(model, str(tmp_path / "fifo")), timeout=20)
    assert (outcome.kind, outcome.detail) == ("error", "FileError")
    assert "fifo' is a FIFO, not a solver state file" in outcome.message


def test_a_resumed_net_with_dropout_draws_the_masks_it_would_have(tmp_path):
    """Dropout's masks come from Caffe's generator, which no solver state
    holds: with the generator's state (Trainer.random_state) restored, a
    resumed run equals the uninterrupted one; without it, it does not."""
    batches = tiny_batches(4)
    dropout = TINY.replace('layer { name: "score"', 'layer { name: "drop" type: "Dropout" '
                           'bottom: "conv1" top: "conv1" dropout_param { dropout_ratio: 0.5 } }\n'
                           'layer { name: "score"')
    net = train_definition(dropout, (1, 2, 10, 10), (4, 4))
    losses, straight, parted, model, state = straight_and_parted(net, batches, tmp_path)
    generator = parted.random_state

    def resumed_losses(with_generator):
        resumed = _core.Trainer(SOLVER + " random_seed: 9", net)  # reseeds the generator
        resumed.restore(model, state)
        if with_generator:
            resumed.random_state = generator
        return [resumed.step(b) for b in batches[2:]]

    assert resumed_losses(True) == losses[2:]
    assert resumed_losses(False) != losses[2:]
    with pytest.raises(surgery.ParseError, match="random generator"):
        straight.random_state = "624 numbers, but not these"

def test_the_memory_limit_covers_the_gradients(lenet):
    """Refused when the trainer is made, not at its first step: Caffe takes
    activations and gradients only then, and the gradients double them (the
    old trainer, built on 3 MB of weights, failed only in its first step)."""
    converted = surgery.fully_convolutionalize(str(lenet[0]), str(lenet[1])).net
    deploy = definition_text(converted)
    side, cells = 28 + 4 * 99, 100
    definition = train_definition(deploy, (1, 1, side, side), (cells, cells))
    held = surgery.memory_in_use()
    first = _core.Trainer(SOLVER, definition)
    first.step({"data": np.zeros((1, 1, side, side), np.float32),
                "label": np.zeros((1, cells, cells), np.float32)})
    need = surgery.memory_in_use() - held  # what a step really took
    del first
    try:
        # Half: the estimate leaves out per-layer buffers, which the
        # allocator's budget still refuses one by one at the step.
        surgery.set_memory_limit(held + need // 2)
        with pytest.raises(surgery.MemoryLimitError, match="the train net would need"):
            _core.Trainer(SOLVER, definition)
    finally:
        surgery.set_memory_limit(0)
