"""Detections drawn as AP counts them: read back from the PNG, each box's
edge has the colour of what it is (found, false, missed), in every panel,
and each panel's title counts them."""

import numpy as np
from PIL import Image

from surgery.detection_picture import FALSE, FOUND, MISSED, save_detections_picture
from surgery.detections import Detection
from surgery.overlay import GAP_PX, TITLE_PX, layout

TRUTH = np.array([[10, 10, 38, 38, 0], [60, 20, 88, 48, 1]], float)


def colour(hex_colour):
    return np.array([int(hex_colour[k:k + 2], 16) for k in (1, 3, 5)])


def edge_colour(png, panel, box, scale, width):
    """The colour nearest the middle of `box`'s top edge in `panel`."""
    x0, y0, x1, _ = box
    left = panel * (width * scale + GAP_PX)
    x, y = left + int((x0 + x1) / 2 * scale), TITLE_PX + int(y0 * scale)
    patch = png[y - 2:y + 3, x - 1:x + 2].reshape(-1, 3).astype(int)
    return patch


def near(patch, hex_colour):
    return bool((np.abs(patch - colour(hex_colour)).sum(axis=1) < 60).any())


def test_found_false_and_missed_boxes_have_their_colours(tmp_path):
    image = np.zeros((60, 100, 1), np.float32)
    hit = Detection((10, 10, 38, 38), 0, "0", 0.9, (0, 0))
    wrong_place = Detection((40, 30, 68, 58), 1, "1", 0.8, (1, 1))
    duplicate = Detection((10, 16, 38, 44), 0, "0", 0.7, (0, 1))
    path = str(tmp_path / "detections.png")
    save_detections_picture(path, image, [("before", [wrong_place]),
                                          ("after", [hit, duplicate])], TRUTH)
    png = np.asarray(Image.open(path).convert("RGB"))
    scale = layout(60, 100)
    # Before: both boxes missed, the detection false.
    assert near(edge_colour(png, 0, TRUTH[0, :4], scale, 100), MISSED)
    assert near(edge_colour(png, 0, TRUTH[1, :4], scale, 100), MISSED)
    assert near(edge_colour(png, 0, wrong_place.box, scale, 100), FALSE)
    # After: box 0 found (its duplicate false), box 1 still missed.
    assert near(edge_colour(png, 1, hit.box, scale, 100), FOUND)
    assert near(edge_colour(png, 1, duplicate.box, scale, 100), FALSE)
    assert near(edge_colour(png, 1, TRUTH[1, :4], scale, 100), MISSED)
    assert not near(edge_colour(png, 1, TRUTH[1, :4], scale, 100), FOUND)


def test_titles_count_what_each_panel_shows():
    from surgery.detection_picture import draw_detections
    found = Detection((60, 20, 88, 48), 1, "1", 0.5, (0, 0))
    figure = draw_detections(np.zeros((60, 100, 3), np.float32),
                             [("a", []), ("b", [found])], TRUTH)
    titles = [axes.get_title() for axes in figure.axes]
    assert titles == ["a: 0 found, 0 false, 2 missed", "b: 1 found, 0 false, 1 missed"]
