"""Detections: boxes clipped to the image, one per object after
non-maximum suppression, checked on the digits demo (where the pasted
digits are the truth) and on maps made by hand (IoU worked out by hand)."""

import re
from collections import Counter

import numpy as np
import pytest

import surgery
from surgery import digits
from surgery.detections import detect, iou, nms
from surgery.geometry import Geometry
from surgery.report import format_summary


@pytest.mark.parametrize("threshold", [0.5, 0.9])
def test_each_pasted_digit_is_found_once(digits_map, threshold):
    dense, truth = digits_map
    # Across classes, as the demo: one box per pasted digit, however its
    # neighbouring cells name the shifted digit.
    found = dense.detections(threshold=threshold, background=digits.BACKGROUND,
                             nms_mode="global")
    matched = []
    for y, x, digit in truth:
        hits = [d for d in found if d.cls == digit and abs(d.box[0] - x) <= 4
                and abs(d.box[1] - y) <= 4]
        assert len(hits) == 1, (digit, x, y, found)
        matched += hits
    assert len(found) == len(truth), f"detections of nothing pasted: {found}"
    for d in found:
        assert d.label == digits.LABELS[d.cls] and d.score >= threshold
        assert 0 <= d.box[0] < d.box[2] <= 156 and 0 <= d.box[1] < d.box[3] <= 92


def test_summary_ranks_the_classes_pasted_by_how_often_they_were_detected(digits_map):
    """The summary lists exactly the digits pasted, each as many times as
    pasted, most first (not the classes whose single best cell scores high)."""
    dense, truth = digits_map
    found = dense.detections(threshold=0.9, background=digits.BACKGROUND, nms_mode="global")
    lines = format_summary(found)
    assert lines[0] == "classes detected (most first):"
    rows = [re.fullmatch(r"  (\S+) \[(\d+)\]: (\d+) \(best ([0-9.]+)\)", line).groups()
            for line in lines[1:]]
    pasted = Counter(digit for _, _, digit in truth)
    assert {int(cls): int(count) for _, cls, count, _ in rows} == pasted
    assert [label for label, *_ in rows] == [digits.LABELS[int(cls)] for _, cls, _, _ in rows]
    counts = [int(count) for _, _, count, _ in rows]
    assert counts == sorted(counts, reverse=True) and counts[0] == max(pasted.values())
    assert format_summary([]) == ["classes detected: none"]


def test_classes_restricts_and_background_is_never_detected(digits_map):
    dense, truth = digits_map
    ones = dense.detections(threshold=0.9, classes=[1], background=digits.BACKGROUND)
    assert len(ones) == sum(digit == 1 for _, _, digit in truth) and {d.cls for d in ones} == {1}
    everything = dense.detections(threshold=0.0, background=digits.BACKGROUND)
    assert everything and all(d.cls != digits.BACKGROUND for d in everything)
    with pytest.raises(ValueError, match="classes"):
        dense.detections(classes=[11])


def hand_map(peaks, shape=(3, 9), classes=2):
    scores = np.zeros((classes,) + shape, np.float32)
    scores[1] = 1.0  # class 1 is background everywhere ...
    for (i, j), score in peaks.items():
        scores[:, i, j] = 0
        scores[0, i, j] = score  # ... except at the peaks, class 0
    return scores


GEO = Geometry(window=(28, 28), stride=(4, 4), receptive_field=(28, 28),
               receptive_offset=(0, 0), padded_layers=())


def boxes_of(shape, image_hw=(36, 60)):
    boxes = np.array([[GEO.window_of(i, j) for j in range(shape[1])] for i in range(shape[0])])
    boxes[..., 0::2] = np.clip(boxes[..., 0::2], 0, image_hw[1])
    boxes[..., 1::2] = np.clip(boxes[..., 1::2], 0, image_hw[0])
    return boxes


def test_two_overlapping_objects_are_kept_when_their_iou_is_below_the_threshold():
    # Cells (0, 0) and (0, 4): windows 0-28 and 16-44, IoU 12 / 44 = 0.27.
    scores = hand_map({(0, 0): 0.9, (0, 4): 0.8})
    boxes = boxes_of(scores.shape[1:])
    assert iou(boxes[0, 0].astype(float), boxes[0, 4][None].astype(float))[0] == \
        pytest.approx(12 / 44)
    found = detect(scores, boxes, str, threshold=0.5, nms_iou=0.3, background=1)
    assert [d.cell for d in found] == [(0, 0), (0, 4)]
    # Above the overlap allowed, the weaker one goes.
    found = detect(scores, boxes, str, threshold=0.5, nms_iou=0.25, background=1)
    assert [d.cell for d in found] == [(0, 0)]
    # Neighbouring cells (IoU 24 / 32) of one object: one detection.
    scores = hand_map({(1, 1): 0.7, (1, 2): 0.95, (2, 2): 0.6})
    found = detect(scores, boxes_of(scores.shape[1:]), str, threshold=0.5, background=1)
    assert [(d.cell, d.score) for d in found] == [((1, 2), pytest.approx(0.95))]


def test_boxes_are_clipped_to_the_image():
    scores = hand_map({(2, 8): 0.9})
    found = detect(scores, boxes_of(scores.shape[1:], image_hw=(40, 50)), str, background=1)
    # Cell (2, 8)'s window is 32,8-60,36; the image is 50 wide.
    assert found[0].box == (32, 8, 50, 36)


def test_nms_is_torchvisions_greedy_rule():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 0, 30, 10], [0, 0, 10, 10]], float)
    scores = np.array([0.5, 0.9, 0.8, 0.1])
    assert nms(boxes, scores, 0.5) == [1, 2]
    assert nms(boxes, scores, 1.0) == [1, 2, 0, 3]


def test_per_class_suppression_keeps_an_object_that_global_suppression_drops():
    """A "zero" at cell (1, 2), 0.998, and beside it (cell (1, 3), IoU 24/32)
    a shifted "four" at 0.999: two classes, two answers. Across classes the
    stronger four hides the zero; within each class (the default) both
    stay. The oracle: each class alone, thinned by torchvision's rule."""
    scores = np.zeros((3, 3, 9), np.float32)
    scores[2] = 1.0  # background everywhere ...
    scores[:, 1, 2] = (0.998, 0.002, 0.0)  # ... but a zero
    scores[:, 1, 3] = (0.001, 0.999, 0.0)  # ... and a four overlapping it
    boxes = boxes_of(scores.shape[1:])
    assert iou(boxes[1, 2].astype(float), boxes[1, 3][None].astype(float))[0] > 0.3
    default = detect(scores, boxes, str, threshold=0.5, background=2)
    assert [(d.cls, d.cell) for d in default] == [(1, (1, 3)), (0, (1, 2))]
    for cls in (0, 1):
        alone = detect(scores, boxes, str, threshold=0.5, classes=[cls], background=2)
        assert [d for d in default if d.cls == cls] == alone
    dropped = detect(scores, boxes, str, threshold=0.5, background=2, nms_mode="global")
    assert [(d.cls, d.cell) for d in dropped] == [(1, (1, 3))]
    with pytest.raises(ValueError, match="nms_mode must be one of class, global"):
        detect(scores, boxes, str, nms_mode="classes")


def test_per_class_suppression_still_gives_one_box_per_object_of_a_class():
    """Neighbouring cells of one class (IoU 24 / 32): the best stands alone."""
    scores = hand_map({(1, 1): 0.7, (1, 2): 0.95, (2, 2): 0.6})
    for mode in ("class", "global"):
        found = detect(scores, boxes_of(scores.shape[1:]), str, threshold=0.5, background=1,
                       nms_mode=mode)
        assert [(d.cell, d.score) for d in found] == [((1, 2), pytest.approx(0.95))]
