"""One rule for inputs, whatever route they take: scaling by dtype and
channels alike for arrays and files, BGR arrays, Caffe's .binaryproto
means, label counts, and argument mistakes refused with a hint."""

import struct

import numpy as np
import pytest
import skimage.io
from skimage.color import rgb2gray

import surgery
from conftest import fixture
from surgery.preprocess import as_image, load_mean


def test_uint16_array_and_16_bit_png_are_scaled_alike(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 65536, (12, 9), dtype=np.uint16)
    skimage.io.imsave(tmp_path / "deep.png", image, check_contrast=False)
    from_file = as_image(tmp_path / "deep.png", 1)
    from_array = as_image(image, 1)
    np.testing.assert_allclose(from_array, from_file, atol=1e-6)
    np.testing.assert_allclose(from_array[..., 0], image / 65535.0, atol=1e-6)
    np.testing.assert_allclose(as_image(image.astype(np.uint8), 1)[..., 0],
                               image.astype(np.uint8) / 255.0, atol=1e-6)


def test_colour_into_a_one_channel_net_is_greyed_alike(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)
    skimage.io.imsave(tmp_path / "colour.png", image)
    from_file = as_image(tmp_path / "colour.png", 1)
    from_array = as_image(image, 1)
    np.testing.assert_allclose(from_array, from_file, atol=1e-6)
    np.testing.assert_allclose(from_array[..., 0], rgb2gray(image), atol=1e-6)


def test_bgr_arrays_are_turned_to_rgb():
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(as_image(rgb[..., ::-1], 3, bgr=True), as_image(rgb, 3))


def test_invert_undoes_preprocessing_as_pycaffe_deprocess_does():
    rng = np.random.default_rng(3)
    image = rng.random((6, 7, 3), dtype=np.float32)
    mean = rng.random((3, 6, 7)) * 100
    steps = surgery.Preprocess(mean=mean, channel_swap=(2, 0, 1), raw_scale=255.0,
                               input_scale=0.5)
    _, x = steps(image, 3)
    # Transformer.deprocess's arithmetic, written out.
    expected = (x / 0.5 + mean) / 255.0
    expected = expected[np.argsort((2, 0, 1))].transpose((1, 2, 0))
    np.testing.assert_allclose(steps.invert(x[np.newaxis]), expected, rtol=1e-6)
    np.testing.assert_allclose(steps.invert(x), image, atol=1e-6)
    with pytest.raises(surgery.ShapeError, match="C x H x W"):
        steps.invert(x[0])


def test_signed_integers_have_no_rule():
    with pytest.raises(surgery.ShapeError, match="signed integers"):
        as_image(np.zeros((4, 4), np.int32), 1)


def blob_proto(shape, values, legacy=True):
    """A BlobProto in protobuf's wire format, written out by hand (fields
    num=1, channels=2, height=3, width=4, data=5 packed, shape=7)."""
    def varint(n):
        out = b""
        while True:
            byte, n = n & 0x7F, n >> 7
            out += bytes([byte | (0x80 if n else 0)])
            if not n:
                return out
    data = struct.pack(f"<{len(values)}f", *values)
    if legacy:
        head = b"".join(varint(field << 3) + varint(v) for field, v in zip((1, 2, 3, 4), shape))
    else:
        dims = b"".join(varint(1 << 3) + varint(d) for d in shape)
        head = varint(7 << 3 | 2) + varint(len(dims)) + dims
    return head + varint(5 << 3 | 2) + varint(len(data)) + data


def test_binaryproto_mean_is_read(tmp_path):
    mean = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4) / 7
    (tmp_path / "m.binaryproto").write_bytes(blob_proto(mean.shape, mean.ravel()))
    np.testing.assert_array_equal(load_mean(tmp_path / "m.binaryproto"), mean[0])
    (tmp_path / "s.binaryproto").write_bytes(blob_proto((2, 3, 4), mean.ravel(), legacy=False))
    np.testing.assert_array_equal(load_mean(tmp_path / "s.binaryproto"), mean[0])


@pytest.mark.parametrize("content, message", [
    (b"\xff\xff\xff", "not a binary BlobProto"),
    (blob_proto((1, 3, 2, 2), [1.0] * 5), "do not fill"),
    (blob_proto((1, 3, 1 << 40, 1 << 30), [1.0]), "outside|more than"),
])
def test_hostile_binaryproto_is_refused(tmp_path, content, message):
    (tmp_path / "bad.binaryproto").write_bytes(content)
    with pytest.raises(surgery.ParseError, match=message):
        load_mean(tmp_path / "bad.binaryproto")


@pytest.fixture
def lenet_fc(lenet):
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    return net


def test_labels_must_match_the_output_channels(lenet_fc, tmp_path):
    names = [f"digit {d}" for d in range(10)]
    (tmp_path / "ok.txt").write_text("\n".join(names) + "\n")
    dense = surgery.dense_forward(lenet_fc, np.zeros((28, 28)), labels=str(tmp_path / "ok.txt"))
    assert dense.labels == names
    (tmp_path / "header.txt").write_text("name\n" + "\n".join(names) + "\n")
    with pytest.raises(surgery.ShapeError, match="11 names.*10 channels.*header"):
        surgery.dense_forward(lenet_fc, np.zeros((28, 28)), labels=tmp_path / "header.txt")
    with pytest.raises(surgery.ShapeError, match="9 names"):
        surgery.dense_forward(lenet_fc, np.zeros((28, 28)), labels=names[:9])


def test_one_blob_name_is_not_split_and_top_needs_k_of_one_or_more(lenet_fc):
    dense = surgery.dense_forward(lenet_fc, np.zeros((28, 28)), blobs="pool2")
    assert dense.features("pool2").shape == (1, 50, 4, 4)
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k >= 1"):
            dense.top(k)


def test_an_unconverted_net_gets_a_hint(lenet):
    net = surgery.Net(*lenet)
    with pytest.raises(surgery.ShapeError, match=r"call fully_convolutionalize\(\) first"):
        surgery.dense_forward(net, np.zeros((80, 80)))


# --- settings that do not fit the image's range -------------------------------

@pytest.mark.parametrize("settings, image", [
    (dict(mean=[104, 117, 123]), np.zeros((28, 28, 3), np.uint8)),     # 0..1 less 104
    (dict(mean=[104, 117, 123], raw_scale=1), np.zeros((28, 28, 3), np.uint8)),
    (dict(raw_scale=255), np.full((28, 28, 3), 200, np.float32)),      # 0..255 times 255
])
def test_a_range_that_does_not_fit_the_settings_is_one_warning(settings, image):
    with pytest.warns(surgery.PreprocessingWarning) as caught:
        surgery.Preprocess(**settings)(image, 3)
    assert len(caught) == 1
    assert "raw_scale" in str(caught[0].message)


@pytest.mark.parametrize("settings, image", [
    (dict(mean=[104, 117, 123], raw_scale=255), np.zeros((28, 28, 3), np.uint8)),
    (dict(mean=[104, 117, 123]), np.full((28, 28, 3), 200, np.float32)),  # 0..255 floats
    (dict(mean=[0.5, 0.5, 0.5]), np.zeros((28, 28, 3), np.uint8)),
    (dict(raw_scale=255), np.ones((28, 28, 3), np.float32)),
])
def test_settings_that_fit_the_range_say_nothing(settings, image):
    # pytest turns any warning into an error (pyproject's filterwarnings).
    surgery.Preprocess(**settings)(image, 3)


def test_presets_are_the_families_published_settings():
    caffenet = surgery.Preprocess.preset("caffenet")
    mean = np.load(fixture("ilsvrc_2012_mean", "ilsvrc_2012_mean.npy")).mean(axis=(1, 2))
    np.testing.assert_allclose(caffenet.mean, mean, rtol=1e-8)
    assert (caffenet.channel_swap, caffenet.raw_scale, caffenet.size) == ((2, 1, 0), 255, None)
    assert surgery.Preprocess.preset("vgg", resize=True).size == (224, 224)
    inception = surgery.Preprocess.preset("inception", resize=True)
    # BGR, 0..255 less 128, times 1/128: a red image gives blue and green -1,
    # red 127/128.
    red = np.zeros((320, 300, 3), np.float32)
    red[..., 0] = 1
    _, x = inception(red, 3)
    assert x.shape == (3, 299, 299)
    np.testing.assert_allclose(x[:, 100, 100], [-1, -1, 127 / 128], rtol=1e-6)
    mine = surgery.Preprocess.preset("googlenet", mean=[1, 2, 3], size=(300, 200))
    assert (mine.mean, mine.size, mine.raw_scale) == ((1, 2, 3), (300, 200), 255)
    with pytest.raises(ValueError, match="no preset 'alexnet': give one of caffenet, vgg"):
        surgery.Preprocess.preset("alexnet")
