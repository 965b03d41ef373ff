"""The label map of a dense net's cells, against a brute-force oracle that
measures each cell's window against each box by hand, and on the converted
LeNet, whose map shape it must take from the net as a forward gives it."""

import numpy as np
import pytest

import surgery
from conftest import fixture
from surgery.geometry import Geometry
from surgery.window_labels import IGNORE, window_labels

GEO = Geometry(window=(28, 28), stride=(4, 4), receptive_field=(28, 28),
               receptive_offset=(0, 0), padded_layers=())
BACKGROUND = 10


def oracle(image_shape, map_shape, boxes, pos_iou, neg_iou):
    """Each cell by hand: its window against every box, in plain arithmetic."""
    out = np.zeros(map_shape, int)
    for i in range(map_shape[0]):
        for j in range(map_shape[1]):
            x0, y0 = 4 * j, 4 * i
            x1, y1 = x0 + 28, y0 + 28
            best, cls = 0.0, None
            for bx0, by0, bx1, by1, c in boxes:
                w = max(0, min(x1, bx1) - max(x0, bx0))
                h = max(0, min(y1, by1) - max(y0, by0))
                union = 28 * 28 + (bx1 - bx0) * (by1 - by0) - w * h
                if w * h / union > best:
                    best, cls = w * h / union, c
            inside = (min(x1, image_shape[1]) - x0) * (min(y1, image_shape[0]) - y0)
            if inside < 0.5 * 28 * 28:
                out[i, j] = IGNORE
            elif best >= pos_iou:
                out[i, j] = cls
            elif best >= neg_iou:
                out[i, j] = IGNORE
            else:
                out[i, j] = BACKGROUND
    return out


@pytest.mark.parametrize("pos_iou, neg_iou", [(0.5, 0.3), (0.7, 0.1), (0.4, 0.4)])
def test_labels_match_brute_force(pos_iou, neg_iou):
    rng = np.random.default_rng(1)
    image_shape, map_shape = (70, 90), (14, 19)  # the last cells run past the edges
    boxes = []
    for _ in range(6):
        x, y = rng.integers(0, 70), rng.integers(0, 50)
        w, h = rng.integers(12, 36, size=2)
        boxes.append((x, y, x + w, y + h, int(rng.integers(0, 10))))
    got = window_labels(GEO, image_shape, boxes, background=BACKGROUND, pos_iou=pos_iou,
                        neg_iou=neg_iou, map_shape=map_shape)
    want = oracle(image_shape, map_shape, boxes, pos_iou, neg_iou)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)
    assert got[-1, -1] == IGNORE and (got == BACKGROUND).any()
    assert ((got >= 0) & (got < BACKGROUND)).any()


def test_no_boxes_is_all_background_inside_the_image():
    got = window_labels(GEO, (40, 40), [], background=3, map_shape=(8, 8))
    want = oracle((40, 40), (8, 8), [], 0.5, 0.3)
    np.testing.assert_array_equal(got, np.where(want == IGNORE, IGNORE, 3))
    assert got[0, 0] == 3 and got[7, 7] == IGNORE  # that window is 12 x 12 pixels inside


def test_the_net_gives_its_geometry_and_map_shape(tmp_path):
    lenet = fixture("lenet_mnist_trained")
    net = surgery.fully_convolutionalize(str(lenet / "lenet.prototxt"),
                                         str(lenet / "lenet_iter_10000.caffemodel")).net
    image = np.zeros((1, 1, 61, 83), np.float32)
    scores = net.forward(data=image)[net.outputs[0]]
    boxes = [(10, 12, 38, 40, 3), (50, 20, 78, 48, 8)]
    got = window_labels(net, (61, 83), boxes, background=10)
    assert got.shape == scores.shape[2:]
    np.testing.assert_array_equal(
        got, window_labels(surgery.geometry(net), (61, 83), boxes, background=10,
                           map_shape=scores.shape[2:]))
    assert got[3, 3] == 3 and got[5, 13] == 8  # the cells whose windows are the boxes


def test_bad_arguments_refused():
    with pytest.raises(ValueError, match="neg_iou <= pos_iou"):
        window_labels(GEO, (40, 40), [], background=10, pos_iou=0.3, neg_iou=0.5, map_shape=(4, 4))
    with pytest.raises(surgery.ShapeError, match="give map_shape"):
        window_labels(GEO, (40, 40), [], background=10)


def test_picture_colours_the_labelled_cells(tmp_path):
    import skimage.io
    from matplotlib import colormaps
    from surgery import overlay
    image = np.zeros((70, 90, 1), np.float32)  # black: only the labels colour it
    boxes = [(20, 12, 48, 40, 3)]
    labels = window_labels(GEO, image.shape[:2], boxes, background=BACKGROUND, map_shape=(14, 19))
    path = tmp_path / "labels.png"
    overlay.save_window_labels_picture(str(path), image, labels, GEO, BACKGROUND, boxes)
    picture = skimage.io.imread(path)[:, :, :3].astype(float)
    scale = overlay.layout(70, 90)
    assert picture.shape[:2] == (70 * scale + overlay.CAPTION_PX, 90 * scale)

    def colour(i, j):  # at the centre of cell (i, j)'s window
        return picture[int((4 * i + 14) * scale), int((4 * j + 14) * scale)]
    assert labels[3, 5] == 3 and labels[0, 16] == BACKGROUND and labels[-1, -1] == IGNORE
    hue = np.array(colormaps["tab10"](3)[:3])
    assert np.argmax(colour(3, 5)) == np.argmax(hue)  # class 3's own colour
    grey = colour(0, 16)
    assert grey.max() - grey.min() < 3 and grey.mean() > 20  # faint grey
    assert colour(13, 18).max() < 3  # ignored: the black image shows through
