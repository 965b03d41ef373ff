"""Detection AP against the VOC definition worked by hand, and against a
brute-force loop over every rank on random detections."""

import numpy as np
import pytest

from surgery.detection_ap import average_precision
from surgery.detections import Detection


def det(box, cls, score):
    return Detection(box=box, cls=cls, label=str(cls), score=score, cell=(0, 0))


def test_hand_worked_example():
    truth = [[(0, 0, 10, 10, 1), (20, 0, 30, 10, 1)], [(0, 0, 10, 10, 2)]]
    found = [[det((0, 0, 10, 10), 1, 0.9), det((1, 0, 11, 10), 1, 0.8),  # a duplicate
              det((20, 1, 30, 11), 1, 0.7)],
             [det((40, 40, 50, 50), 2, 0.6)]]
    result = average_precision(found, truth)
    # class 1: hit, miss, hit -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1:
    # 1/2 * 1 + 1/2 * 2/3. Class 2: its one box never found.
    assert result.per_class == pytest.approx({1: 1 / 2 + 1 / 3, 2: 0.0})
    assert result.ap == pytest.approx((5 / 6) / 2)
    assert (result.true, result.false, result.boxes) == (2, 2, 3)


def brute_force(scored, boxes):
    """VOC all-point AP: each rank's recall gain times the best precision at
    that rank or below it."""
    ranked = sorted(scored, key=lambda s: -s[0])
    total, hits, points = 0.0, 0, []
    for k, (_, hit) in enumerate(ranked):
        hits += hit
        points.append((hits / boxes, hits / (k + 1)))
    previous = 0.0
    for k, (recall, _) in enumerate(points):
        total += (recall - previous) * max(p for _, p in points[k:])
        previous = recall
    return total


def test_random_detections_match_brute_force():
    rng = np.random.default_rng(4)
    truth, found, scored = [], [], []
    for _ in range(5):
        boxes = [(x, 0, x + 10, 10, 0) for x in rng.choice(np.arange(0, 200, 20), 4, False)]
        truth.append(boxes)
        image = []
        matched = set()
        for _ in range(6):
            x = int(rng.integers(0, 200))
            score = float(rng.random())
            image.append(det((x, 0, x + 10, 10), 0, score))
        for d in sorted(image, key=lambda d: -d.score):  # greedy matching, by hand
            hit = next((b for b in boxes if b not in matched and
                        (10 - abs(d.box[0] - b[0])) * 10 / (200 - (10 - abs(d.box[0] - b[0])) * 10)
                        >= 0.5 and abs(d.box[0] - b[0]) < 10), None)
            if hit:
                matched.add(hit)
            scored.append((d.score, hit is not None))
        found.append(image)
    assert any(hit for _, hit in scored)
    assert average_precision(found, truth).ap == pytest.approx(brute_force(scored, 20))
