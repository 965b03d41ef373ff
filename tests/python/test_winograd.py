"""convolution="winograd" against Caffe's own convolution on the same net:
trained LeNet on MNIST, CaffeNet converted (random weights) on a 451 image,
weights written through views, the CLI (its memory limit: test_convolution_engines.py); and both against
the exact sum as the input channels grow. The layer-level checks (every
kernel size, pads, groups, buffers) are in tests/cpp/test_winograd.cpp."""

import subprocess
import sys

import numpy as np
import pytest

import surgery
from conftest import fixture
from convolution_rounding import layer_errors

# Error against the exact sum relative to the output's scale (one layer,
# standard normal weights and input; benchmarks/winograd_precision.py
# measures 3x3 to 7x7 at 16 to 16383 channels). Winograd rounds in its
# transforms (2e-6 to 5e-6 at any channel count) and in its sums over the
# input channels, whose error grows with the length of a chain of float
# additions: the few-columns GEMM (libcaffe's caffe::streamed_gemm) adds
# chains of 128 channels, OpenBLAS's blocks reached 2.9e-5 at 1024
# channels. Caffe's im2col + GEMM stayed below 2e-6.
WINOGRAD_BOUND = 4e-5
CAFFE_BOUND = 3e-6


def forward_both(net, **inputs):
    """{algorithm: outputs} of one net on the same inputs."""
    out = {}
    for algorithm in ("caffe", "winograd"):
        net.convolution = algorithm
        out[algorithm] = net.forward(**inputs)
    return out


@pytest.mark.slow
def test_lenet_reads_mnist_as_caffe_does(lenet, mnist):
    images, labels = mnist
    x = images[:500, None].astype(np.float32) * 0.00390625
    net = surgery.Net(*lenet)
    probs = {k: v["prob"] for k, v in forward_both(net, data=x).items()}
    assert net.winograd_layers == ["conv1", "conv2"]  # 5x5; ip1 and ip2 are not convolutions
    np.testing.assert_allclose(probs["winograd"], probs["caffe"], atol=2e-5)
    assert (probs["winograd"].argmax(1) == probs["caffe"].argmax(1)).all()
    assert (probs["winograd"].argmax(1) == labels[:500]).mean() > 0.97


@pytest.mark.slow
def test_caffenet_dense_map_matches_caffe(caffenet_fc):
    image = np.random.default_rng(3).uniform(0, 255, (451, 451, 3)).astype(np.float32)
    maps = {}
    for algorithm in ("caffe", "winograd"):
        caffenet_fc.convolution = algorithm
        maps[algorithm] = surgery.dense_forward(caffenet_fc, image)
    assert caffenet_fc.winograd_layers == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6-conv"]
    times = caffenet_fc.layer_times
    assert [name for name in times if name in caffenet_fc.winograd_layers] == \
        caffenet_fc.winograd_layers and all(ms >= 0 for ms in times.values())
    assert maps["winograd"].shape == maps["caffe"].shape == (8, 8)
    # Six layers' rounding, each within 4e-5 of its scale (3e-6 measured),
    # through a softmax this peaked (logits of a few hundred): 1.4e-5 to
    # 5.8e-5 measured over six images.
    np.testing.assert_allclose(maps["winograd"].scores, maps["caffe"].scores, atol=1e-4)
    assert (maps["winograd"].argmax == maps["caffe"].argmax).all()
    # A batch of three gives each image's map as one by one does, within the
    # same rounding (fc6 then has 48 tile columns, past the few-column
    # kernel: its sums are OpenBLAS's, in another order).
    batch = np.stack([image, image[::-1], image[:, ::-1]])
    caffenet_fc.convolution = "winograd"
    together = caffenet_fc.forward(data=batch.transpose(0, 3, 1, 2).copy())["prob"]
    alone = caffenet_fc.forward(data=batch[1:2].transpose(0, 3, 1, 2).copy())["prob"]
    np.testing.assert_allclose(together[1:2], alone, atol=4e-5)  # 2.5e-5 measured
    caffenet_fc.convolution = "caffe"
    exact = caffenet_fc.forward(data=batch[1:2].transpose(0, 3, 1, 2).copy())["prob"]
    assert (together[1:2].argmax(1) == exact.argmax(1)).all()


@pytest.mark.slow
def test_layers_replaced_by_rarefaction_are_checked_anew(caffenet_fc_files):
    # Rarefying to stride 16 replaces pool5 and the layers after it (fc6-conv
    # then dilated 2: Caffe's again); the convolutions before keep Winograd.
    net = surgery.Net(*caffenet_fc_files)
    x = np.random.default_rng(5).uniform(-1, 1, (1, 3, 451, 451)).astype(np.float32)
    net.convolution = "winograd"
    net.forward(data=x)
    assert "fc6-conv" in net.winograd_layers
    surgery.rarefy(net, stride=16)
    both = forward_both(net, data=x)
    assert net.winograd_layers == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    np.testing.assert_allclose(both["winograd"]["prob"], both["caffe"]["prob"], atol=1e-4)


@pytest.mark.slow
def test_tiled_map_matches_the_whole_within_rounding(caffenet_fc):
    # Tiles move where Winograd's tiles fall, so the sums round differently
    # from the whole image's: equal within the same 1e-4, not bit for bit.
    image = np.random.default_rng(4).uniform(0, 255, (643, 611, 3)).astype(np.float32)
    caffenet_fc.convolution = "winograd"
    whole = surgery.dense_forward(caffenet_fc, image)
    tiled = surgery.dense_forward(caffenet_fc, image, tile=(420, 420))
    assert tiled.shape == whole.shape == (14, 13)
    np.testing.assert_allclose(tiled.scores, whole.scores, atol=1e-4)
    assert (tiled.argmax == whole.argmax).all()


@pytest.mark.parametrize("kernel, channels, side, stride", [
    (3, 16, 8, 1),
    (6, 256, 8, 1),
    (5, 1024, 24, 1),   # 36 tiles a block: OpenBLAS's products (the few-columns kernel with AVX-512)
    (3, 256, 70, 1),    # 289 tiles a block: OpenBLAS's products on any CPU
    (7, 16383, 8, 1),   # near the most a 7x7 layer may have (16384): one chain gave 7.9e-5
    (11, 3, 111, 4),    # conv1 of CaffeNet at 451: 3x3 on its 48 phases, in blocks of tiles
    (5, 512, 16, 2),    # 3x3 on 2048 phases
])
def test_rounding_against_the_exact_sum_is_bounded(tmp_path, kernel, channels, side, stride):
    errors = layer_errors(tmp_path, channels, kernel, side, seed=0, stride=stride)
    assert errors["winograd"] <= WINOGRAD_BOUND, errors
    assert errors["caffe"] <= CAFFE_BOUND, errors


CONV = """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 8 dim: 12 dim: 12 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "out"
        convolution_param { num_output: 16 kernel_size: 3 pad: 1 } }
"""


def conv_net(tmp_path, text=CONV):
    path = tmp_path / "conv.prototxt"
    path.write_text(text)
    net = surgery.Net(path)
    rng = np.random.default_rng(0)
    for blob in net.params["conv"]:
        blob[...] = rng.standard_normal(blob.shape).astype(np.float32)
    return net


def test_weights_written_through_views_are_used(tmp_path):
    net = conv_net(tmp_path)
    x = np.random.default_rng(1).standard_normal((1, 8, 12, 12)).astype(np.float32)
    net.convolution = "winograd"
    net.forward(data=x)  # transforms the weights
    held = net.params["conv"][0]  # a view kept across forwards
    for change in (lambda: held.__imul__(-2), lambda: held.__setitem__((0, 0, 1, 1), 5.0)):
        change()
        both = forward_both(net, data=x)
        np.testing.assert_allclose(both["winograd"]["out"], both["caffe"]["out"],
                                   rtol=0, atol=2e-5 * np.abs(both["caffe"]["out"]).max())
    del held
    net.params["conv"][0][...] *= 0.5  # a view made, written and dropped at once
    both = forward_both(net, data=x)
    np.testing.assert_allclose(both["winograd"]["out"], both["caffe"]["out"],
                               rtol=0, atol=2e-5 * np.abs(both["caffe"]["out"]).max())


def test_a_choice_of_how_to_run_not_saved(tmp_path):
    net = conv_net(tmp_path)
    with pytest.raises(ValueError, match="'caffe', 'winograd', 'onednn' or 'fastest', not 'fast'"):
        net.convolution = "fast"
    assert net.convolution == "caffe"
    net.save(tmp_path / "a.prototxt", tmp_path / "a.caffemodel")
    net.convolution = "winograd"
    net.forward(data=np.ones((1, 8, 12, 12), np.float32))
    net.save(tmp_path / "b.prototxt", tmp_path / "b.caffemodel")
    assert (tmp_path / "a.caffemodel").read_bytes() == (tmp_path / "b.caffemodel").read_bytes()
    # The first line records the weights' file name, size and SHA-256.
    assert ((tmp_path / "a.prototxt").read_text().replace("a.caffemodel", "b.caffemodel")
            == (tmp_path / "b.prototxt").read_text())


def test_cli_dense_with_winograd(lenet, tmp_path):
    digit = fixture("mnist_t10k", "digits", "t10k_00000_label7.png")
    result = subprocess.run([sys.executable, "-m", "surgery.cli", "dense", *map(str, lenet),
                             str(digit), "--raw-scale", "0.99609375", "--convolution", "winograd"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "7 [7] 1.0000 at 0,0-28,28 (cell 0,0)" in result.stdout
