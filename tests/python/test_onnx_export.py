"""Export to ONNX, checked by running the written file in ONNX Runtime (an
implementation independent of ours: MLAS kernels, its own pooling and LRN)
against our forward: every blob compared is within 1e-4 of its scale (the
largest magnitude in our result).

- every deploy net among the fixtures (FIXTURE_NETS), as loaded and made
  fully convolutional; the converted one at its native size and at a larger
  size with two images, from the same file (symbolic batch, height, width);
- two small nets that use every layer type the exporter translates, each
  with the settings where Caffe and ONNX could part (Caffe's ceil rounding
  with the last window clipped, averages over padded windows, asymmetric
  kernels, groups, dilation, in-place layers), compared blob by blob;
- refusals (DilatedPooling, batch statistics) before anything is written,
  with the file already there left as it was.
"""

import itertools
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest

import surgery
from surgery.testing import randomize, with_input

from conftest import fixture

# (folder, prototxt, caffemodel or None for random weights, larger size)
FIXTURE_NETS = [
    ("lenet_mnist_trained", "lenet.prototxt", "lenet_iter_10000.caffemodel", 92),
    ("bvlc_caffe_mnist_lenet", "lenet.prototxt", None, 60),
    ("bvlc_caffenet_full_conv", "conv.prototxt", None, 131),
    ("squeezenet", "SqueezeNet_v1.1_deploy.prototxt", None, 291),
    pytest.param("bvlc_caffenet_full_conv", "bvlc_caffenet_full_conv.prototxt", None, 515,
                 marks=pytest.mark.slow),
    pytest.param("bvlc_reference_caffenet", "deploy.prototxt", None, 291,
                 marks=pytest.mark.slow),
    pytest.param("bvlc_alexnet", "deploy.prototxt", None, 291, marks=pytest.mark.slow),
    pytest.param("resnet50_deploy", "ResNet-50-deploy.prototxt", None, 256,
                 marks=pytest.mark.slow),
    pytest.param("vgg16_deploy", "vgg16_deploy.v1-gist-derived.prototxt", None, 256,
                 marks=pytest.mark.slow),
]
# The fixtures' other prototxts are not deploy nets: train/test nets read
# LMDB data, and a solver is not a net.
NOT_DEPLOY = {("bvlc_caffe_mnist_lenet", "lenet_solver.prototxt"),
              ("bvlc_caffe_mnist_lenet", "lenet_train_test.prototxt"),
              ("bvlc_reference_caffenet", "train_val.prototxt")}


def session(path):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # the test machine's cores are shared
    return onnxruntime.InferenceSession(os.fspath(path), options,
                                        providers=["CPUExecutionProvider"])


def assert_same_blobs(net, path, blobs, x):
    """Our forward and ONNX Runtime's run of the file at `path` on `x` give
    each of `blobs` within 1e-4 of its scale."""
    ours_outputs = net.forward(**{net.inputs[0]: x})
    theirs = session(path).run(None, {net.inputs[0]: x})
    for blob, got in zip(blobs, theirs):
        want = ours_outputs[blob] if blob in ours_outputs else net.blobs[blob]
        assert got.shape == want.shape, blob
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * scale, err_msg=blob)


def exported(net, path, blobs):
    """Exports `blobs` of `net` to `path` and checks the written file."""
    surgery.export_onnx(net, path, outputs=blobs)
    onnx.checker.check_model(os.fspath(path), full_check=True)
    return [dim.dim_param or dim.dim_value
            for dim in onnx.load(path).graph.input[0].type.tensor_type.shape.dim]


def test_the_fixture_list_holds_every_deploy_net():
    listed = {tuple(p.values[:2]) if hasattr(p, "values") else p[:2] for p in FIXTURE_NETS}
    found = {(path.parent.name, path.name) for path in fixture().glob("*/*.prototxt")}
    assert found - NOT_DEPLOY == listed


@pytest.mark.parametrize("folder,name,weights,larger", FIXTURE_NETS)
def test_fixture_net_runs_alike_in_onnx_runtime(tmp_path, folder, name, weights, larger):
    net = surgery.Net(fixture(folder, name), weights and fixture(folder, weights))
    if weights is None:
        randomize(net, seed=3)
    rng = np.random.default_rng(4)
    shape = net.blobs[net.inputs[0]].shape
    x = rng.uniform(-1, 1, (1, *shape[1:])).astype(np.float32)
    # Beside the outputs, the scores a Softmax takes: saturated
    # probabilities would hide an error in them.
    scores = [layer.bottoms[0] for layer in net.layers if layer.type == "Softmax"]
    blobs = net.outputs + scores
    original = exported(net, tmp_path / "original.onnx", blobs)
    assert_same_blobs(net, tmp_path / "original.onnx", blobs, x)

    surgery.fully_convolutionalize(net)
    scores = [layer.bottoms[0] for layer in net.layers if layer.type == "Softmax"]
    blobs = net.outputs + scores
    converted = exported(net, tmp_path / "converted.onnx", blobs)
    assert_same_blobs(net, tmp_path / "converted.onnx", blobs, x)
    big = rng.uniform(-1, 1, (2, shape[1], larger, larger)).astype(np.float32)
    assert_same_blobs(net, tmp_path / "converted.onnx", blobs, big)
    assert converted == ["N", shape[1], "H", "W"]
    if any(layer.type == "InnerProduct" for layer in surgery.Net(fixture(folder, name)).layers):
        assert original == ["N", *shape[1:]]


# Every translated layer type, with the settings where Caffe and ONNX could
# part: ceil rounding whose last window hangs over the padded input (AVE
# and MAX, 23 -> 12 -> 7), asymmetric kernels, pads and strides, groups,
# dilation, leaky ReLU, both LRN regions, Eltwise's three operations and
# coefficients, BatchNorm's stored sums, Scale with a bias, Split, in-place
# layers and Softmax over channels.
FULLY_CONVOLUTIONAL = """
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_h: 3 kernel_w: 5 pad_h: 1 pad_w: 2
                      stride_h: 2 stride_w: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1"
  relu_param { negative_slope: 0.1 } }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
  convolution_param { num_output: 8 kernel_size: 3 pad: 2 dilation: 2 group: 2 } }
layer { name: "bn2" type: "BatchNorm" bottom: "conv2" top: "conv2" }
layer { name: "scale2" type: "Scale" bottom: "conv2" top: "conv2"
  scale_param { bias_term: true } }
layer { name: "ave" type: "Pooling" bottom: "conv2" top: "ave"
  pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "max" type: "Pooling" bottom: "conv2" top: "max"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "cat" type: "Concat" bottom: "ave" bottom: "max" top: "cat" }
layer { name: "across" type: "LRN" bottom: "cat" top: "across"
  lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: 2 } }
layer { name: "within" type: "LRN" bottom: "across" top: "within"
  lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 norm_region: WITHIN_CHANNEL } }
layer { name: "split" type: "Split" bottom: "within" top: "w1" top: "w2" }
layer { name: "sum" type: "Eltwise" bottom: "across" bottom: "w1" top: "sum"
  eltwise_param { operation: SUM coeff: 0.5 coeff: -2 } }
layer { name: "prod" type: "Eltwise" bottom: "sum" bottom: "w2" bottom: "across" top: "prod"
  eltwise_param { operation: PROD } }
layer { name: "max3" type: "Eltwise" bottom: "sum" bottom: "prod" bottom: "w1" top: "max3"
  eltwise_param { operation: MAX } }
layer { name: "drop" type: "Dropout" bottom: "max3" top: "max3" }
layer { name: "pool" type: "Pooling" bottom: "max3" top: "pool"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 ceil_mode: false } }
layer { name: "prob" type: "Softmax" bottom: "pool" top: "prob" }
"""
# A classifier: global pooling, a squeeze-and-excitation gate (Scale of two
# bottoms), Flatten, Reshape, InnerProduct stored transposed.
CLASSIFIER = """
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "squeeze" type: "Pooling" bottom: "conv" top: "squeeze"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "flat" type: "Flatten" bottom: "squeeze" top: "flat" }
layer { name: "gate" type: "Scale" bottom: "conv" bottom: "flat" top: "gated"
  scale_param { axis: 0 } }
layer { name: "rows" type: "Reshape" bottom: "gated" top: "rows"
  reshape_param { shape { dim: 0 dim: -1 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "rows" top: "ip1"
  inner_product_param { num_output: 6 transpose: true } }
layer { name: "relu" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "ip2" top: "prob" }
"""


def small_net(tmp_path, text, shape):
    path = tmp_path / "net.prototxt"
    path.write_text(with_input(text, shape))
    net = surgery.Net(path)
    randomize(net, seed=7)
    return net


def every_blob(net):
    """Each top as the last layer writing it leaves it."""
    return list(dict.fromkeys(top for layer in net.layers[1:] for top in layer.tops))


@pytest.mark.parametrize("sizes", [(23, 23), (37, 30)])
def test_every_translated_layer_runs_alike(tmp_path, sizes):
    net = small_net(tmp_path, FULLY_CONVOLUTIONAL, (1, 3, 23, 23))
    net.params["bn2"][2][...] = 4  # the weight of the stored sums, not 1
    assert exported(net, tmp_path / "net.onnx", every_blob(net)) == ["N", 3, "H", "W"]
    x = np.random.default_rng(8).uniform(-3, 3, (2, 3, *sizes)).astype(np.float32)
    assert_same_blobs(net, tmp_path / "net.onnx", every_blob(net), x)


def test_a_classifier_with_a_gate_and_reshapes_runs_alike(tmp_path):
    net = small_net(tmp_path, CLASSIFIER, (1, 3, 10, 10))
    assert exported(net, tmp_path / "net.onnx", every_blob(net)) == ["N", 3, 10, 10]
    x = np.random.default_rng(9).uniform(-3, 3, (3, 3, 10, 10)).astype(np.float32)
    assert_same_blobs(net, tmp_path / "net.onnx", every_blob(net), x)


# Every pooling of kernel 2..4, stride 1..3 and pad 0..kernel-1, MAX and
# AVE, rounding up and down: Caffe's output size, its clip rule and its
# divisors against ONNX Runtime's, on inputs of 4..15 rows (by 3 more
# columns), brute force. Rounding up with a stride above the kernel and no
# padding is refused (the next test).
POOLINGS = [(pool, k, s, p, ceil)
            for pool, k, s, ceil in itertools.product(("MAX", "AVE"), (2, 3, 4), (1, 2, 3),
                                                      ("true", "false"))
            for p in range(k) if not (ceil == "true" and p == 0 and s > k)]


def pooling_layer(pool, k, s, p, ceil):
    name = f"{pool}_k{k}_s{s}_p{p}_{ceil}"
    return (f'layer {{ name: "{name}" type: "Pooling" bottom: "data" top: "{name}" '
            f'pooling_param {{ pool: {pool} kernel_size: {k} stride: {s} pad: {p} '
            f'ceil_mode: {ceil} }} }}\n')


def test_every_pooling_rounds_and_divides_as_caffes(tmp_path):
    net = small_net(tmp_path, "".join(pooling_layer(*p) for p in POOLINGS), (1, 2, 9, 9))
    blobs = every_blob(net)
    exported(net, tmp_path / "net.onnx", blobs)
    for rows in range(4, 16):
        x = np.random.default_rng(rows).standard_normal((1, 2, rows, rows + 3))
        assert_same_blobs(net, tmp_path / "net.onnx", blobs, x.astype(np.float32))


def test_a_pooling_whose_caffe_windows_start_past_the_input_is_refused(tmp_path):
    net = small_net(tmp_path, pooling_layer("MAX", 2, 3, 0, "true"), (1, 2, 6, 6))
    assert net.blobs["MAX_k2_s3_p0_true"].shape[2:] == (3, 3)  # a third window starts at 6
    with pytest.raises(surgery.ExportError, match=r"layer 'MAX_k2_s3_p0_true' \(Pooling\) "
                                                  r"rounds up with a stride \[3, 3\] above its "
                                                  r"kernel \[2, 2\].*set ceil_mode: false"):
        surgery.export_onnx(net, tmp_path / "pool.onnx")


def rarefied_lenet(lenet):
    """The trained LeNet, converted and rarefied to stride 1: pool2 becomes
    a DilatedPooling."""
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    surgery.rarefy(net, 4)
    assert "DilatedPooling" in [layer.type for layer in net.layers]
    return net


def test_a_layer_onnx_cannot_express_is_refused_and_nothing_written(tmp_path, lenet):
    net = rarefied_lenet(lenet)
    out = tmp_path / "lenet.onnx"
    out.write_bytes(b"an older export")
    with pytest.raises(surgery.ExportError,
                       match=r"layer 'pool2' \(DilatedPooling\) .*export the converted net "
                             r"before rarefying it"):
        surgery.export_onnx(net, out)
    assert out.read_bytes() == b"an older export"
    assert os.listdir(tmp_path) == ["lenet.onnx"]


def test_batch_statistics_are_refused(tmp_path):
    net = small_net(tmp_path, """
        layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn"
          batch_norm_param { use_global_stats: false } }""", (2, 3, 4, 4))
    with pytest.raises(surgery.ExportError, match=r"layer 'bn' \(BatchNorm\) normalizes by "
                                                  r"each batch's own statistics"):
        surgery.export_onnx(net, tmp_path / "bn.onnx")
    assert not (tmp_path / "bn.onnx").exists()


def test_the_memory_limit_is_asked_before_the_weights_are_copied(tmp_path, lenet):
    net = surgery.Net(*lenet)  # 1.7 MB of weights
    surgery.set_memory_limit(surgery.memory_in_use() + 2 * 2**20)
    try:
        with pytest.raises(surgery.MemoryLimitError, match="the ONNX model of the net"):
            surgery.export_onnx(net, tmp_path / "lenet.onnx")
    finally:
        surgery.set_memory_limit(0)
    assert not (tmp_path / "lenet.onnx").exists()


def test_without_onnx_the_error_says_what_to_install(tmp_path, lenet, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx fails as if not installed
    with pytest.raises(ImportError, match=r"pip install 'caffe-surgery\[onnx\]'"):
        surgery.export_onnx(surgery.Net(*lenet), tmp_path / "lenet.onnx")
    assert not (tmp_path / "lenet.onnx").exists()


def test_the_nets_own_prototxt_is_not_overwritten(tmp_path, lenet):
    net = surgery.Net(*lenet)
    with pytest.raises(surgery.FileError, match="refusing to overwrite an input"):
        surgery.export_onnx(net, lenet[0])


def test_an_unknown_output_blob_is_refused(tmp_path, lenet):
    with pytest.raises(surgery.ExportError, match="no blob named 'scores'"):
        surgery.export_onnx(surgery.Net(*lenet), tmp_path / "x.onnx", outputs=["scores"])
    assert not (tmp_path / "x.onnx").exists()


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "surgery", *map(str, args)],
                          capture_output=True, text=True)


def test_cli_exports_files_and_refuses_with_the_layers_name(tmp_path, lenet):
    result = run_cli("export", *lenet, tmp_path / "lenet.onnx")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "lenet.onnx" in result.stdout
    net = surgery.Net(*lenet)
    x = np.random.default_rng(5).uniform(0, 1, (1, 1, 28, 28)).astype(np.float32)
    assert_same_blobs(net, tmp_path / "lenet.onnx", net.outputs, x)

    net = rarefied_lenet(lenet)
    net.save(tmp_path / "rare.prototxt", tmp_path / "rare.caffemodel")
    result = run_cli("export", tmp_path / "rare.prototxt", tmp_path / "rare.caffemodel",
                     tmp_path / "rare.onnx")
    assert result.returncode == 2
    assert "layer 'pool2' (DilatedPooling)" in result.stderr
    assert not (tmp_path / "rare.onnx").exists()
    result = run_cli("export", *lenet, tmp_path / "lenet2.onnx", "--outputs", "prob,scores")
    assert result.returncode == 2
    assert "--outputs: no blob named 'scores'" in result.stderr
    assert not (tmp_path / "lenet2.onnx").exists()
