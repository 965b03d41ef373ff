"""Batched dense inference: several images of one size in one forward give
the maps they give one by one, in the order given, within the memory limit."""

import numpy as np
import pytest

import surgery


@pytest.fixture(scope="module")
def lenet_fc(lenet):
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    return net


def one_by_one(net, images, **kwargs):
    return [surgery.dense_forward(net, image, **kwargs) for image in images]


def test_caffenet_batch_equals_one_by_one(caffenet_fc):
    rng = np.random.default_rng(1)
    # 259: a 2x2 map, so fc6-conv's batched GEMM takes all 3 images at once.
    images = [rng.uniform(0, 1, (259, 259, 3)).astype(np.float32) for _ in range(3)]
    kwargs = dict(preprocess=surgery.Preprocess(mean=[104, 117, 123], channel_swap=(2, 1, 0),
                                                raw_scale=255),
                  blobs=("fc7-conv", "pool5"))
    alone = one_by_one(caffenet_fc, images, **kwargs)
    together = surgery.dense_forward(caffenet_fc, images, batch_size=3, **kwargs)
    assert caffenet_fc.blobs["data"].shape[0] == 3     # they did run as one batch
    assert len(together) == 3
    for a, b in zip(alone, together):
        assert b.shape == a.shape == (2, 2)
        # Probabilities: the rounding below may move them (random weights
        # give logits near 70), within the 1e-5 docs/dense.md states; equal
        # bits measured on this machine's OpenBLAS.
        np.testing.assert_allclose(b.scores, a.scores, atol=1e-5, rtol=0)
        # Convolutions whose output channels outnumber their cells (conv5 at
        # this size, fc6, fc7) are one GEMM over the batch (recipe patch
        # 0009): each value is a sum of thousands of terms taken in another
        # order than one image's GEMM, so it may differ by float32 rounding
        # of that sum (up to 1e-4 of the blob's scale seen); a misplaced
        # column or image would be off by its whole size.
        for blob in ("fc7-conv", "pool5"):
            alone_blob = a.features(blob)
            assert b.features(blob).shape == alone_blob.shape
            np.testing.assert_allclose(b.features(blob), alone_blob, rtol=0,
                                       atol=1e-4 * np.abs(alone_blob).max())
    # Not kept: a view of this image's part of the batch.
    view = together[2].features("fc6-conv")
    assert view.shape == (1, 4096, 2, 2)
    np.testing.assert_array_equal(view[0], caffenet_fc.blobs["fc6-conv"][2])


def test_lenet_digits_batch_equals_one_by_one(lenet_fc, mnist):
    images, labels = mnist
    canvases = []
    for k in range(6):
        # LeNet's cells are 28x28 windows at stride 4: digits pasted at
        # y = 16 and x = 0, 28, 56 fill cells (4, 0), (4, 7), (4, 14).
        canvas = np.zeros((56, 84), np.uint8)
        for slot in range(3):
            canvas[16:44, 28 * slot:28 * slot + 28] = images[3 * k + slot]
        canvases.append(canvas)
    alone = one_by_one(lenet_fc, canvases)
    together = surgery.dense_forward(lenet_fc, canvases, batch_size=4)   # batches of 4 and 2
    for k, (a, b) in enumerate(zip(alone, together)):
        np.testing.assert_allclose(b.scores, a.scores, atol=1e-5, rtol=0)
        # The cells whose windows sit on the pasted digits read them.
        row = b.scores[:, 4, ::7].argmax(axis=0)
        np.testing.assert_array_equal(row, labels[3 * k:3 * k + 3])


def test_mixed_sizes_keep_their_order(lenet_fc):
    rng = np.random.default_rng(2)
    sizes = [(40, 52), (36, 36), (40, 52), (60, 28), (36, 36), (40, 52)]
    images = [rng.uniform(0, 1, size).astype(np.float32) for size in sizes]
    alone = one_by_one(lenet_fc, images)
    together = surgery.dense_forward(lenet_fc, images, batch_size=2)
    assert [m.shape for m in together] == [m.shape for m in alone]
    for image, a, b in zip(images, alone, together):
        assert b.image.shape[:2] == image.shape
        np.testing.assert_array_equal(b.image, a.image)
        np.testing.assert_allclose(b.scores, a.scores, atol=1e-5, rtol=0)


def test_a_batch_the_memory_limit_refuses_runs_in_smaller_ones(lenet):
    lenet_fc = surgery.Net(*lenet)   # its own: no capacity left from other tests
    surgery.fully_convolutionalize(lenet_fc)
    rng = np.random.default_rng(3)
    images = [rng.uniform(0, 1, (120, 120)).astype(np.float32) for _ in range(4)]
    before = surgery.memory_in_use()
    first = surgery.dense_forward(lenet_fc, images[0], batch_size=1)
    one_image = surgery.memory_in_use() - before
    assert one_image > 0
    # Room for one image's blobs and a half: a batch of 2 or 4 is refused.
    surgery.set_memory_limit(before + one_image * 3 // 2)
    try:
        with pytest.raises(surgery.MemoryLimitError):   # all four at once do not fit
            lenet_fc.forward(data=np.stack(images)[:, np.newaxis])
        # The refused forward gave back what it took, and the old shape.
        assert surgery.memory_in_use() <= before + one_image
        assert lenet_fc.blobs["data"].shape[0] == 1
        together = surgery.dense_forward(lenet_fc, images, batch_size=4)
    finally:
        surgery.set_memory_limit(0)
    assert lenet_fc.blobs["data"].shape[0] < 4          # it ran in smaller batches
    np.testing.assert_allclose(together[0].scores, first.scores, atol=1e-5, rtol=0)
    alone = one_by_one(lenet_fc, images)
    for a, b in zip(alone, together):
        np.testing.assert_allclose(b.scores, a.scores, atol=1e-5, rtol=0)


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "4"])
def test_batch_size_must_be_a_whole_number(lenet_fc, bad):
    with pytest.raises(ValueError, match="batch_size"):
        surgery.dense_forward(lenet_fc, np.zeros((28, 28), np.float32), batch_size=bad)
