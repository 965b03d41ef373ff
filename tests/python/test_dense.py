"""Dense inference: preprocessing as the seed does it, window boxes checked
by a brute-force probe, maps against crops, OpenCV and the real LeNet."""

import subprocess
import sys

import numpy as np
import pytest
import skimage.io
from skimage import img_as_float
from skimage.transform import resize

import surgery
from conftest import fixture, opencv_caffe_reader
from surgery.testing import randomize, with_input

# Needs only the installed package and the fixtures: runs against the wheel too.
pytestmark = pytest.mark.wheel


def seed_preprocess(path, mean_values, size):
    """The seed notebook's steps, written out from pycaffe's caffe.io:
    load_image, Transformer with mean, transpose (2,0,1), channel swap
    (2,1,0), raw scale 255, resized to the net's input size."""
    im = img_as_float(skimage.io.imread(path)).astype(np.float32)
    lo, hi = im.min(), im.max()
    im = (resize((im - lo) / (hi - lo), size, order=1, mode="constant") * (hi - lo) + lo)
    x = im.astype(np.float32).transpose((2, 0, 1))[[2, 1, 0], :, :]
    x = x * 255.0
    return x - mean_values[:, None, None]


def test_preprocessing_matches_the_seed_on_cat():
    cat = fixture("caffe_example_images", "cat.jpg")
    mean = np.load(fixture("ilsvrc_2012_mean", "ilsvrc_2012_mean.npy")).mean(1).mean(1)
    transformer = surgery.Preprocess(mean=mean, channel_swap=(2, 1, 0), raw_scale=255.0,
                                     size=(451, 451))
    _, ours = transformer(cat, 3)
    np.testing.assert_allclose(ours, seed_preprocess(cat, mean, (451, 451)), atol=1e-4)


def test_mean_image_is_resized_as_pycaffe_does():
    mean = np.load(fixture("ilsvrc_2012_mean", "ilsvrc_2012_mean.npy"))
    fitted = surgery.preprocess.as_mean(mean, (3, 100, 120))
    assert fitted.shape == (3, 100, 120)
    np.testing.assert_allclose(fitted.mean(axis=(1, 2)), mean.mean(axis=(1, 2)), rtol=0.01)
    with pytest.raises(surgery.ShapeError, match="mean"):
        surgery.preprocess.as_mean(mean, (1, 10, 10))


def test_caffenet_boxes_are_the_8x8_grid_of_227_windows(caffenet_fc):
    dense = surgery.dense_forward(caffenet_fc, np.zeros((451, 451, 3), np.float32))
    assert dense.shape == (8, 8)
    boxes = dense.boxes
    assert boxes.shape == (8, 8, 4)
    expected = [[(32 * j, 32 * i, 32 * j + 227, 32 * i + 227) for j in range(8)] for i in range(8)]
    np.testing.assert_array_equal(boxes, expected)


def test_non_square_input_agrees_with_opencv(caffenet_fc, tmp_path):
    cat = fixture("caffe_example_images", "cat.jpg")
    transformer = surgery.Preprocess(mean=[104, 117, 123], channel_swap=(2, 1, 0),
                                     raw_scale=255, size=(375, 500))
    dense = surgery.dense_forward(caffenet_fc, cat, preprocess=transformer, blobs=("data",))
    # Caffe rounds pooling sizes up: a last row and column of cells whose
    # windows run past the image (the box says so).
    assert dense.shape == (6, 10)
    assert tuple(dense.boxes[5, 9]) == (288, 160, 515, 387)
    caffenet_fc.save(tmp_path / "fc.prototxt", tmp_path / "fc.caffemodel")
    reference = opencv_caffe_reader()(str(tmp_path / "fc.prototxt"), str(tmp_path / "fc.caffemodel"))
    reference.setInput(dense.features("data"))
    np.testing.assert_allclose(reference.forward()[0], dense.scores, atol=1e-4)


PROBE_NETS = {
    "pad-stride-dilation": """
      layer { name: "c1" type: "Convolution" bottom: "data" top: "c1"
              convolution_param { num_output: 2 kernel_size: 3 pad: 1 stride: 2 } }
      layer { name: "c2" type: "Convolution" bottom: "c1" top: "c2"
              convolution_param { num_output: 2 kernel_size: 3 dilation: 2 } }""",
    "ceil-pooling": """
      layer { name: "c1" type: "Convolution" bottom: "data" top: "c1"
              convolution_param { num_output: 2 kernel_size: 2 } }
      layer { name: "p1" type: "Pooling" bottom: "c1" top: "p1"
              pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
      layer { name: "c2" type: "Convolution" bottom: "p1" top: "c2"
              convolution_param { num_output: 2 kernel_h: 3 kernel_w: 2 } }""",
}


@pytest.mark.parametrize("name", sorted(PROBE_NETS))
def test_receptive_field_matches_a_brute_force_probe(tmp_path, name):
    path = tmp_path / "probe.prototxt"
    path.write_text(with_input(PROBE_NETS[name], (1, 1, 19, 17)))
    net = surgery.Net(path)
    randomize(net, seed=11)
    geo = surgery.geometry(net)
    base = net.forward(data=np.zeros((1, 1, 19, 17)))[net.outputs[0]][0]
    hit = {}
    for y in range(19):
        for x in range(17):
            probe = np.zeros((1, 1, 19, 17), np.float32)
            probe[0, 0, y, x] = 1.0
            changed = np.abs(net.forward(data=probe)[net.outputs[0]][0] - base).max(axis=0) > 0
            for i, j in zip(*np.nonzero(changed)):
                hit.setdefault((i, j), []).append((y, x))
    (oy, ox), (sy, sx) = geo.receptive_offset, geo.stride
    (hy, hx) = geo.receptive_field
    for (i, j), pixels in hit.items():
        ys, xs = zip(*pixels)
        assert min(ys) == max(0, oy + i * sy) and max(ys) == min(18, oy + i * sy + hy - 1)
        assert min(xs) == max(0, ox + j * sx) and max(xs) == min(16, ox + j * sx + hx - 1)
    assert len(hit) == base.shape[1] * base.shape[2]


def test_lenet_reads_pasted_mnist_digits_back(lenet, mnist):
    images, labels = mnist
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    canvas = np.zeros((36, 64), np.uint8)
    canvas[0:28, 0:28] = images[0]
    canvas[8:36, 36:64] = images[1]
    dense = surgery.dense_forward(net, canvas,
                                  preprocess=surgery.Preprocess(raw_scale=255 * 0.00390625))
    assert dense.shape == (3, 10)
    assert tuple(dense.boxes[0, 0]) == (0, 0, 28, 28)
    assert tuple(dense.boxes[2, 9]) == (36, 8, 64, 36)
    assert dense.argmax[0, 0] == labels[0] and dense.argmax[2, 9] == labels[1]
    # Each cell is the original net on its crop (LeNet has no padding).
    original = surgery.Net(*lenet)
    crop = canvas[8:36, 36:64].astype(np.float32) / 255 * 255 * 0.00390625
    expected = original.forward(data=crop[None, None])["prob"][0]
    np.testing.assert_allclose(dense.scores[:, 2, 9], expected, atol=1e-6)
    classes, scores = dense.top(3)
    assert classes.shape == (3, 3, 10) and (scores[0] >= scores[1]).all()


def test_lenet_36x36_boxes_are_3x3_windows_of_28(lenet):
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    dense = surgery.dense_forward(net, np.zeros((36, 36), np.float32))
    assert dense.shape == (3, 3)
    assert [tuple(b) for b in dense.boxes[1]] == [(0, 4, 28, 32), (4, 4, 32, 32), (8, 4, 36, 32)]


def test_several_images_features_and_staleness(lenet):
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    small, big = np.zeros((28, 28)), np.ones((40, 52), np.float32)
    first, second = surgery.dense_forward(net, [small, big], blobs=("pool2",))
    assert first.shape == (1, 1) and second.shape == (4, 7)
    assert first.features("pool2").shape == (1, 50, 4, 4)   # kept copy
    with pytest.raises(surgery.SurgeryError, match="run again"):
        first.features("ip1-conv")
    view = second.features("ip1-conv")
    assert view.shape == (1, 500, 4, 7) and np.shares_memory(view, net.blobs["ip1-conv"])


def test_bad_images_raise_typed_errors(lenet, tmp_path):
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    # LeNet's smallest input is 25x25 (pooling rounds up), below its 28x28 window.
    with pytest.raises(surgery.ShapeError, match="at least 25x25"):
        surgery.dense_forward(net, np.zeros((20, 40)))
    assert surgery.dense_forward(net, np.zeros((25, 25))).shape == (1, 1)
    with pytest.raises(surgery.ShapeError, match="5 channels, the net takes 1"):
        surgery.dense_forward(net, np.zeros((30, 30, 5)))
    with pytest.raises(surgery.ShapeError, match="NaN"):
        surgery.dense_forward(net, np.full((30, 30), np.nan))
    with pytest.raises(surgery.ShapeError, match="mean has 3 values"):
        surgery.dense_forward(net, np.zeros((30, 30)), preprocess=surgery.Preprocess(mean=[1, 2, 3]))
    with pytest.raises(surgery.FileError, match="absent.png"):
        surgery.dense_forward(net, tmp_path / "absent.png")
    not_fc = surgery.Net(*lenet)
    with pytest.raises(surgery.ShapeError, match="InnerProduct"):
        surgery.dense_forward(not_fc, np.zeros((28, 28)))


def test_picture_draws_each_detection_where_it_was_found(lenet, mnist, tmp_path):
    """The overlay's image area is the input enlarged `layout` times from
    the top-left corner: each detection's box is drawn in white on its
    window's edges there, and the background far from any box is not white."""
    images, labels = mnist
    canvas = np.zeros((60, 60), np.float32)
    canvas[8:36, 12:40] = images[0] * 0.00390625  # the window of cell (2, 3)
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    dense = surgery.dense_forward(net, canvas, labels=[str(d) for d in range(10)])
    found = dense.detections(threshold=0.9)
    assert (labels[0], (12, 8, 40, 36)) in [(d.cls, tuple(d.box)) for d in found]
    dense.save_picture(tmp_path / "map.png", detections=found)
    picture = skimage.io.imread(tmp_path / "map.png")[..., :3].astype(int)
    scale = surgery.overlay.layout(60, 60)
    assert picture.shape == (60 * scale + surgery.overlay.CAPTION_PX,
                             60 * scale + surgery.overlay.BAR_PX, 3)
    white = picture[:60 * scale, :60 * scale].min(axis=2) >= 230
    inside = np.zeros_like(white)  # a box, its label and its 1.5-point edges
    for d in found:
        x0, y0, x1, y1 = (v * scale for v in d.box)
        inside[max(0, y0 - 3):y1 + 3, max(0, x0 - 3):x1 + 3] = True
    # The digit's box: each edge (but the top one, under the label) white
    # within 2 pixels of where the detection says.
    x0, y0, x1, y1 = (v * scale for v in (12, 8, 40, 36))
    for t in np.linspace(0.2, 0.8, 7):
        y, x = int(y0 + t * (y1 - y0)), int(x0 + t * (x1 - x0))
        assert white[y, x0 - 2:x0 + 3].any() and white[y, x1 - 3:x1 + 2].any()
        assert white[y1 - 3:y1 + 2, x].any()
    assert not (white & ~inside).any()  # nothing white (drawn) away from the boxes



def test_cli_dense_on_lenet(lenet, tmp_path):
    digit = fixture("mnist_t10k", "digits", "t10k_00000_label7.png")
    result = subprocess.run([sys.executable, "-m", "surgery.cli", "dense", *map(str, lenet),
                             str(digit), "--raw-scale", "0.99609375", "--png",
                             str(tmp_path / "m.png")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "7 [7] 1.0000 at 0,0-28,28 (cell 0,0)" in result.stdout
    assert (tmp_path / "m.png").exists()
