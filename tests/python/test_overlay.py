"""Pictures: the map drawn over the input, read back from the file, puts
its heat over the pasted object, in the format the suffix names."""

import matplotlib
import numpy as np
import pytest
import skimage.io

import surgery
from surgery import digits, overlay
from surgery.detections import iou


def heat_in_picture(path, height, width):
    """Per image pixel, the heat value the picture shows: the picture's
    pixels over the input, matched to the nearest colour of the colour map
    blended (alpha) over a black input."""
    picture = skimage.io.imread(path)[..., :3].astype(np.float64) / 255
    scale = overlay.layout(height, width)
    area = picture[:height * scale, :width * scale]
    lut = matplotlib.colormaps[overlay.COLORMAP](np.linspace(0, 1, 256))[:, :3] * overlay.HEAT_ALPHA
    distance = ((area[:, :, None, :] - lut[None, None]) ** 2).sum(-1)
    value = distance.argmin(-1) / 255.0
    value[distance.min(-1) > 0.01] = -1  # not a colour of the map (labels, boxes)
    return value, scale


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_heat_peak_lies_over_the_pasted_digit(digits_map, tmp_path, suffix):
    dense, truth = digits_map
    # The digits pasted once (the heat of a class pasted thrice peaks at one of them).
    once = [(y, x, d) for y, x, d in truth if sum(d == e for _, _, e in truth) == 1]
    assert len(once) >= 3
    for y, x, digit in once:
        # Drawn over a black input, so that only the heat colours the picture.
        shown = surgery.DenseMap(dense._net, np.zeros_like(dense.image), dense.scores,
                                 dense.geometry, {}, digits.LABELS)
        path = tmp_path / f"d{digit}{suffix}"
        shown.save_picture(path, cls=digit)
        with open(path, "rb") as f:
            magic = f.read(4)
        assert magic[:4] == b"\x89PNG" if suffix == ".png" else magic[:3] == b"\xff\xd8\xff"
        value, scale = heat_in_picture(path, *dense.image.shape[:2])
        py, px = np.unravel_index(value.argmax(), value.shape)
        iy, ix = py / scale, px / scale
        # The peak is over the digit, near its centre (a shift by half a
        # window, 14 pixels, would put it outside).
        assert x <= ix < x + 28 and y <= iy < y + 28, (digit, (x, y), (ix, iy))
        assert abs(ix - (x + 14)) <= 6 and abs(iy - (y + 14)) <= 6, (digit, (x, y), (ix, iy))


def test_overlay_with_detections_and_side_by_side(digits_map, tmp_path):
    dense, _ = digits_map
    found = dense.detections(threshold=0.9, background=digits.BACKGROUND)
    dense.save_picture(tmp_path / "o.png", detections=found)
    picture = skimage.io.imread(tmp_path / "o.png")
    scale = overlay.layout(*dense.image.shape[:2])
    assert picture.shape[:2] == (92 * scale + overlay.CAPTION_PX, 156 * scale + overlay.BAR_PX)
    dense.save_picture(tmp_path / "s.jpeg", side_by_side=True)
    assert skimage.io.imread(tmp_path / "s.jpeg").shape == (450, 1000, 3)
    with pytest.raises(surgery.FileError, match=r"\.png, \.jpg"):
        dense.save_picture(tmp_path / "o.gif")
    with pytest.raises(surgery.FileError, match="does not exist"):
        dense.save_picture(tmp_path / "absent" / "o.png")
    assert not (tmp_path / "o.gif").exists()


@pytest.fixture
def crowded(lenet, mnist):
    """LeNet on a digit whose neighbouring cells name it differently: with
    per-class suppression, overlapping boxes of several classes."""
    images, _ = mnist
    canvas = np.zeros((60, 60), np.float32)
    canvas[8:36, 12:40] = images[0] * 0.00390625
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    dense = surgery.dense_forward(net, canvas, labels=[f"digit {d}" for d in range(10)])
    return dense, dense.detections(threshold=0.3)


def test_labels_of_overlapping_boxes_do_not_overlap(crowded):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    dense, found = crowded
    boxes = np.array([d.box for d in found], float)
    assert len(found) >= 3 and any(
        (iou(boxes[i], boxes[i + 1:]) > 0).any() for i in range(len(found) - 1))
    figure = overlay.draw_overlay(dense, detections=found)
    renderer = FigureCanvasAgg(figure).get_renderer()
    [axes] = [a for a in figure.axes if a.texts]
    labels = [t for t in axes.texts]
    assert sorted(t.get_text() for t in labels) == sorted(f"{d.label} {d.score:.2f}"
                                                          for d in found)
    extents = [t.get_window_extent(renderer) for t in labels]
    for i, a in enumerate(extents):
        for b in extents[i + 1:]:
            assert not a.overlaps(b), (a, b)


def test_the_heat_shows_the_boxes_class_on_its_own_scale(crowded):
    """By default the best detection's class, whatever class peaks in some
    other cell; its colour bar runs over that map's own range, said below."""
    dense, found = crowded
    figure = overlay.draw_overlay(dense, detections=found)
    caption = [t.get_text() for t in figure.texts][0]
    assert caption.startswith(f"{found[0].label} [{found[0].cls}]: score per cell")
    [heat] = [image for a in figure.axes for image in a.images if image.get_alpha()]
    low, high = heat.get_clim()
    values = dense.scores[found[0].cls]
    assert (low, high) == (0.0, pytest.approx(float(values.max())))
    assert f"colours 0 to {high:.3g}: this map's range" in caption
    # A class that never reaches 0.05 still spans the whole scale.
    faint = int(np.argmin(dense.scores.max(axis=(1, 2))))
    assert dense.scores[faint].max() < 0.05
    figure = overlay.draw_overlay(dense, cls=faint)
    [heat] = [image for a in figure.axes for image in a.images if image.get_alpha()]
    assert heat.get_clim()[1] == pytest.approx(float(dense.scores[faint].max()))
