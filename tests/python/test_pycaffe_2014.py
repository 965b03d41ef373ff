"""The 2014 pycaffe API on surgery.pycaffe.Net (set_mean, set_channel_swap,
set_raw_scale, set_input_scale, preprocess, deprocess, set_phase_*),
checked against upstream's caffe.io.Transformer, which later releases
moved these settings to."""

import numpy as np
import pytest

import surgery
import surgery.pycaffe as caffe
from surgery.testing import with_input

CONV = """layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
                  convolution_param { num_output: 2 kernel_size: 3
                                      weight_filler { type: "gaussian" std: 0.1 } } }"""


@pytest.fixture
def prototxt(tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text(with_input(CONV, (2, 3, 8, 10)))
    return str(path)


@pytest.fixture
def net(prototxt):
    return caffe.Net(prototxt, caffe.TEST)


def transformer_like(net, mean, mode_channel=False):
    """Upstream's Transformer with the settings the tests give the net."""
    transformer = caffe.io.Transformer({"data": net.blobs["data"].data.shape})
    transformer.set_transpose("data", (2, 0, 1))
    transformer.set_mean("data", mean.mean(1).mean(1) if mode_channel else mean)
    transformer.set_channel_swap("data", (2, 0, 1))
    transformer.set_raw_scale("data", 255.0)
    transformer.set_input_scale("data", 0.25)
    return transformer


def configure(net, mean, mode="elementwise"):
    net.set_mean("data", mean, mode=mode)
    net.set_channel_swap("data", (2, 0, 1))
    net.set_raw_scale("data", 255.0)
    net.set_input_scale("data", 0.25)


@pytest.mark.parametrize("mode", ["elementwise", "channel"])
def test_preprocess_and_deprocess_are_the_transformers(net, mode):
    rng = np.random.default_rng(0)
    image = rng.random((13, 11, 3), dtype=np.float32)  # resized to 8 x 10
    mean = rng.random((3, 5, 6)) * 120  # a mean image of another size: resized too
    configure(net, mean, mode)
    transformer = transformer_like(net, mean, mode_channel=mode == "channel")
    ours = net.preprocess("data", image)
    assert ours.shape == (3, 8, 10) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, transformer.preprocess("data", image), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(net.deprocess("data", ours[np.newaxis]),
                               transformer.deprocess("data", ours), rtol=1e-5, atol=1e-5)


def test_values_are_taken_as_they_are_not_scaled_by_type(net):
    net.set_raw_scale("data", 2.0)
    image = np.full((8, 10, 3), 200, np.uint8)
    # Taken as they are, and said to look wrong: 0..255 values scaled up again.
    with pytest.warns(surgery.PreprocessingWarning, match="raw_scale=2"):
        ours = net.preprocess("data", image)
    np.testing.assert_array_equal(ours, np.full((3, 8, 10), 400.0))


def test_a_preprocessed_batch_runs_through_forward_all(net):
    rng = np.random.default_rng(1)
    configure(net, rng.random((3, 8, 10)) * 100)
    images = [rng.random((8, 10, 3), dtype=np.float32) for _ in range(3)]
    batch = np.asarray([net.preprocess("data", im) for im in images])
    out = net.forward_all(data=batch)["conv"]
    assert out.shape == (3, 2, 6, 8)
    for one, x in zip(out, batch):
        net.blobs["data"].data[0] = x
        np.testing.assert_allclose(net.forward()["conv"][0], one, rtol=1e-6)


def test_settings_belong_to_one_net(prototxt, net):
    other = caffe.Net(prototxt, caffe.TEST)
    net.set_raw_scale("data", 255.0)
    image = np.full((8, 10, 3), 0.5, np.float32)
    assert net.preprocess("data", image).max() == pytest.approx(127.5)
    assert other.preprocess("data", image).max() == pytest.approx(0.5)


def test_mistakes_are_refused_with_their_reason(net):
    with pytest.raises(surgery.SurgeryError, match="not an input of the net"):
        net.set_raw_scale("conv", 255.0)
    with pytest.raises(ValueError, match="mode"):
        net.set_mean("data", np.zeros((3, 8, 10)), mode="pixel")
    with pytest.raises(surgery.ShapeError, match="mean"):
        net.set_mean("data", np.zeros((4, 8, 10)))
    with pytest.raises(surgery.ShapeError, match="channel_swap"):
        net.set_channel_swap("data", (0, 0, 1))
    with pytest.raises(surgery.ShapeError, match="raw_scale"):
        net.set_raw_scale("data", "255")


def test_the_phase_is_checked_not_switched(prototxt, net, tmp_path):
    net.set_phase_test()
    with pytest.raises(surgery.SurgeryError, match="caffe.TRAIN"):
        net.set_phase_train()
    caffe.Net(prototxt, caffe.TRAIN).set_phase_train()
    # The 2014 two-argument form builds a net for testing, as the seed expects.
    weights = tmp_path / "net.caffemodel"
    net.save(str(weights))
    caffe.Net(prototxt, str(weights)).set_phase_test()
