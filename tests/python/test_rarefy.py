"""Filter rarefaction (surgery.rarefy): its layer, LeNet, saving, refusals.

Oracles: DilatedPooling against a numpy reference written from Caffe's
pooling arithmetic (and against Caffe's own Pooling at dilation 1);
trained LeNet, rarefied by 2 and 4, against the original classifier run on
every crop at steps 2 and 1 (input-level shift-and-stitch: LeNet has no
padding). Saved rarefied nets reload in surgery.Net, and in stock Caffe
and OpenCV where only stock layers remain. Nets with padding against both
shift-and-stitch definitions: test_rarefy_oracles.py.
"""

import subprocess

import numpy as np
import pytest

import surgery
from surgery.testing import plain_caffe, plain_caffe_binary

from conftest import opencv_caffe_reader
from layer_references import reference_pooling

# --------------------------------------------------------------------------
# DilatedPooling vs numpy


def pooling_net(tmp_path, shape, method, kernel, stride, pad, dilation, ceil, kind):
    dilation_text = (f"convolution_param {{ dilation: {dilation[0]} dilation: {dilation[1]} }}"
                     if kind == "DilatedPooling" else "")
    text = f"""
layer {{ name: "data" type: "Input" top: "data"
        input_param {{ shape {{ {' '.join(f'dim: {d}' for d in shape)} }} }} }}
layer {{ name: "pool" type: "{kind}" bottom: "data" top: "pool"
        pooling_param {{ pool: {method} kernel_h: {kernel[0]} kernel_w: {kernel[1]}
                         stride_h: {stride[0]} stride_w: {stride[1]}
                         pad_h: {pad[0]} pad_w: {pad[1]} ceil_mode: {str(ceil).lower()} }}
        {dilation_text} }}
"""
    path = tmp_path / f"{kind}.prototxt"
    path.write_text(text)
    return surgery.Net(path)


CASES = [  # shape, kernel, stride, pad, dilation, ceil
    ((2, 3, 13, 11), (3, 3), (1, 1), (0, 0), (2, 2), True),
    ((1, 2, 17, 9), (3, 2), (2, 1), (3, 1), (2, 3), True),
    ((1, 2, 15, 16), (2, 3), (3, 2), (1, 2), (3, 2), False),
    ((2, 1, 9, 7), (3, 3), (2, 2), (4, 1), (3, 1), True),
    ((1, 4, 11, 10), (5, 2), (1, 3), (2, 0), (2, 4), False),
    ((1, 1, 5, 5), (2, 2), (4, 4), (0, 0), (3, 3), True),
]


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("shape,kernel,stride,pad,dilation,ceil", CASES)
def test_dilated_pooling_matches_numpy(tmp_path, method, shape, kernel, stride, pad, dilation,
                                       ceil):
    x = np.random.default_rng(sum(shape) + pad[0]).standard_normal(shape).astype(np.float32)
    net = pooling_net(tmp_path, shape, method, kernel, stride, pad, dilation, ceil,
                      "DilatedPooling")
    got = net.forward(data=x)["pool"]
    want = reference_pooling(x.astype(np.float64), method, kernel, stride, pad, dilation, ceil)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("ceil", [True, False])
def test_dilation_one_is_caffes_pooling(tmp_path, method, ceil):
    shape, kernel, stride, pad = (2, 3, 14, 11), (3, 2), (2, 3), (1, 1)
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    ours = pooling_net(tmp_path, shape, method, kernel, stride, pad, (1, 1), ceil,
                       "DilatedPooling").forward(data=x)["pool"]
    caffes = pooling_net(tmp_path, shape, method, kernel, stride, pad, (1, 1), ceil,
                         "Pooling").forward(data=x)["pool"]
    np.testing.assert_array_equal(ours, caffes)


def test_bad_dilated_pooling_is_refused_on_load(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text("""
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }
layer { name: "pool" type: "DilatedPooling" bottom: "data" top: "pool"
        pooling_param { pool: MAX kernel_size: 2 pad: 3 } convolution_param { dilation: 2 } }
""")
    with pytest.raises(surgery.NetDefinitionError, match=r"'pool'.*pad"):
        surgery.Net(path)


# --------------------------------------------------------------------------
# LeNet, trained: every cell is the classifier on its crop


def digit_canvas(mnist, h, w, seed):
    """Real digits pasted on a dark canvas, scaled as LeNet was trained."""
    images, _ = mnist
    rng = np.random.default_rng(seed)
    canvas = np.zeros((h, w), np.float32)
    for _ in range(6):
        y, x = rng.integers(0, h - 28), rng.integers(0, w - 28)
        canvas[y:y + 28, x:x + 28] = np.maximum(canvas[y:y + 28, x:x + 28],
                                                images[rng.integers(len(images))])
    return canvas / 255.0


@pytest.mark.parametrize("factor", [2, 4])
def test_lenet_every_cell_is_the_classifier_on_its_crop(lenet, mnist, factor):
    prototxt, weights = lenet
    result = surgery.fully_convolutionalize(prototxt, weights, factor=factor)
    step = 4 // factor
    assert surgery.rarefy(result.net, factor=1).layers == []
    assert surgery.geometry(result.net).stride == (step, step)
    assert surgery.geometry(result.net).window == (28, 28)
    canvas = digit_canvas(mnist, 28 + 4 * 5, 28 + 4 * 4, seed=factor)
    dense = result.net.forward(data=canvas[None, None])["prob"][0]
    rows, cols = dense.shape[1:]
    assert (rows, cols) == ((canvas.shape[0] - 28) // step + 1, (canvas.shape[1] - 28) // step + 1)
    crops = np.stack([canvas[i * step:i * step + 28, j * step:j * step + 28]
                      for i in range(rows) for j in range(cols)])[:, None]
    classifier = surgery.Net(prototxt, weights)
    classifier.reshape(data=crops.shape)
    want = classifier.forward(data=crops)["prob"].reshape(rows, cols, -1).transpose(2, 0, 1)
    np.testing.assert_allclose(dense, want, rtol=1e-5, atol=1e-6)
    assert (want.argmax(axis=0) != want.argmax(axis=0)[0, 0]).any(), "the canvas is not trivial"


# --------------------------------------------------------------------------
# Saving


@pytest.mark.slow
def test_caffenet_f2_saved_holds_stock_layers_for_caffe_and_opencv(caffenet_fc_files,
                                                                   tmp_path):
    prototxt, weights = caffenet_fc_files
    net = surgery.Net(prototxt, weights)
    surgery.rarefy(net, 2)
    out = tmp_path / "f2.prototxt", tmp_path / "f2.caffemodel"
    net.save(*out)
    assert "DilatedPooling" not in out[0].read_text()
    x = np.random.default_rng(2).standard_normal((1, 3, 259, 291)).astype(np.float32) * 50
    ours = net.forward(data=x)["prob"]
    assert ours.shape[2:] == (3, 5)
    np.testing.assert_array_equal(surgery.Net(*out).forward(data=x)["prob"], ours)
    cv_net = opencv_caffe_reader()(str(out[0]), str(out[1]))
    cv_net.setInput(x)
    np.testing.assert_allclose(cv_net.forward(), ours, rtol=1e-4, atol=1e-6)
    binary = plain_caffe_binary()
    if not binary.exists():
        pytest.skip(f"{binary} not built (./run.sh test builds it)")
    _, stock = plain_caffe(binary, *out, x, 1, "cpu", tmp_path)
    np.testing.assert_allclose(stock, ours.ravel(), rtol=1e-5, atol=1e-7)


def test_lenet_f4_saved_reloads_in_surgery_and_stock_caffe_refuses_it(lenet, mnist, tmp_path):
    out = tmp_path / "f4.prototxt", tmp_path / "f4.caffemodel"
    result = surgery.fully_convolutionalize(*lenet, *out, factor=4)
    assert 'type: "DilatedPooling"' in out[0].read_text()
    canvas = digit_canvas(mnist, 40, 44, seed=9)[None, None]
    ours = result.net.forward(data=canvas)["prob"]
    again = surgery.Net(*out)
    assert surgery.geometry(again).stride == (1, 1)
    np.testing.assert_array_equal(again.forward(data=canvas)["prob"], ours)
    binary = plain_caffe_binary()
    if not binary.exists():
        pytest.skip(f"{binary} not built (./run.sh test builds it)")
    source = tmp_path / "in.bin"
    canvas.tofile(source)
    done = subprocess.run([str(binary), *map(str, out), "40", "44", "1", "cpu", str(source),
                           str(tmp_path / "out.bin")], capture_output=True, text=True)
    assert done.returncode != 0
    assert "Unknown layer type: DilatedPooling" in done.stderr


# --------------------------------------------------------------------------
# Refusals, the API around it


def test_refusals_name_the_reason_and_leave_the_net(lenet, tmp_path):
    net = surgery.Net(*lenet)
    before = net.forward(data=np.ones((64, 1, 28, 28), np.float32))["prob"]
    with pytest.raises(surgery.NetDefinitionError, match=r"'ip1' \(InnerProduct\).*"
                                                          r"fully_convolutionalize first"):
        surgery.rarefy(net, 2)
    np.testing.assert_array_equal(net.forward(data=np.ones((64, 1, 28, 28), np.float32))["prob"],
                                  before)
    surgery.fully_convolutionalize(net)
    assert surgery.rarefy_factors(net) == [2, 4]
    with pytest.raises(surgery.ShapeError, match="it takes 2, 4"):
        surgery.rarefy(net, 3)
    with pytest.raises(surgery.ShapeError, match="strides it can take: 2, 1"):
        surgery.rarefy(net, stride=3)
    with pytest.raises(surgery.SurgeryError, match="one of them"):
        surgery.rarefy(net, 2, stride=2)
    with pytest.raises(surgery.ShapeError, match="an int"):
        surgery.rarefy(net, 2.0)
    for factor in (2**31, 2**64, -(2**31) - 1):  # past the core's C int: typed, with the range
        with pytest.raises(surgery.ShapeError, match=r"outside 1\.\.2147483647; it takes 2, 4"):
            surgery.rarefy(net, factor)
    with pytest.raises(surgery.ShapeError, match="strides it can take: 2, 1"):
        surgery.rarefy(net, stride=2**31)
    assert surgery.geometry(net).stride == (4, 4)
    result = surgery.rarefy(net, stride=2)
    assert result.factor == 2 and result.stride == (2, 2)
    assert "pool2 (Pooling): stride 2 -> 1" in str(result)


def test_dense_forward_and_cli_take_a_stride(lenet, mnist, tmp_path):
    from surgery.cli import main
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    canvas = digit_canvas(mnist, 40, 44, seed=4)
    dense = surgery.dense_forward(net, canvas, stride=2)
    assert dense.geometry.stride == (2, 2)
    assert dense.shape == ((40 - 28) // 2 + 1, (44 - 28) // 2 + 1)
    assert surgery.dense_forward(net, canvas, stride=2).shape == dense.shape  # not again
    assert main(["convert", *map(str, lenet), "-o", str(tmp_path), "--stride", "1"]) == 0
    saved = surgery.Net(tmp_path / "lenet_full_conv.prototxt",
                        tmp_path / "lenet_iter_10000_full_conv.caffemodel")
    assert surgery.geometry(saved).stride == (1, 1)
