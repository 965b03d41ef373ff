"""Surgery meets pycaffe: surgery's functions take a surgery.pycaffe.Net and
pycaffe code takes a surgery.Net, over one C++ net (np.shares_memory); param
views are written through and outlive their net."""

import numpy as np
import pytest

import surgery
import surgery.pycaffe as caffe
from conftest import opencv_caffe_reader
from surgery.testing import with_input

CONV = """layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
                  convolution_param { num_output: 2 kernel_size: 3 } }"""


@pytest.fixture
def lenet_face(lenet):
    return caffe.Net(str(lenet[0]), str(lenet[1]), caffe.TEST)


def test_param_writes_reach_the_next_forward_and_views_outlive_the_net(lenet_face, mnist):
    net = lenet_face
    net.blobs["data"].data[...] = (mnist[0][:64, None] / 255.0).astype(np.float32)
    before = net.forward()["prob"].copy()
    net.params["conv1"][0].data[...] = 0  # through the view: no setter
    net.params["conv1"][1].data[...] = 0
    after = net.forward()["prob"]
    np.testing.assert_allclose(after, np.broadcast_to(after[0], after.shape))  # inputs alike now
    assert not np.allclose(before, after)
    blob, view = net.blobs["prob"], net.blobs["prob"].data
    del net, lenet_face
    np.testing.assert_array_equal(blob.data, after)
    assert np.shares_memory(view, blob.data)


def test_surgery_converts_a_pycaffe_net_in_place(lenet_face, mnist):
    face = lenet_face
    fc_weights = face.params["ip1"][0].data
    result = surgery.fully_convolutionalize(face)
    assert [layer.new_name for layer in result.layers] == ["ip1-conv", "ip2-conv"]
    # The face sees the converted net: the same memory, now 4-d.
    assert "ip1-conv" in face.params and "ip1" not in face.params
    conv = face.params["ip1-conv"][0].data
    assert conv.shape == (500, 50, 4, 4) and np.shares_memory(conv, fc_weights)
    assert np.shares_memory(conv, result.net.params["ip1-conv"][0])
    # dense_forward on the face gives the map surgery.Net gives, and OpenCV.
    canvas = np.zeros((36, 36), np.float32)
    canvas[4:32, 4:32] = mnist[0][0] / 255.0
    dense = surgery.dense_forward(face, canvas)
    assert dense.shape == (3, 3)
    face.blobs["data"].reshape(1, 1, 36, 36)
    face.reshape()
    face.blobs["data"].data[0, 0] = canvas
    np.testing.assert_allclose(face.forward()["prob"][0], dense.scores, atol=1e-6)


def test_a_surgery_net_runs_in_pycaffe_code(lenet, mnist, tmp_path):
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    face = caffe.Net(net)
    assert np.shares_memory(face.params["ip1-conv"][0].data, net.params["ip1-conv"][0])
    # pycaffe's way to run it: reshape the input blob, then the net.
    face.blobs["data"].reshape(2, 1, 28, 28)
    face.reshape()
    x = (mnist[0][:2, None] / 255.0).astype(np.float32)
    out = face.forward(data=x)["prob"]
    net.save(tmp_path / "fc.prototxt", tmp_path / "fc.caffemodel")
    reference = opencv_caffe_reader()(str(tmp_path / "fc.prototxt"), str(tmp_path / "fc.caffemodel"))
    reference.setInput(x)
    np.testing.assert_allclose(out, reference.forward(), atol=1e-5)
    assert np.shares_memory(face.blobs["prob"].data, net.blobs["prob"])


def test_other_objects_are_refused_with_a_type_error():
    with pytest.raises(TypeError, match="surgery.Net or a surgery.pycaffe.Net"):
        surgery.dense_forward(object(), np.zeros((8, 8)))


def test_a_solvers_net_has_no_surgery_net_and_says_how_to_get_one(tmp_path):
    prototxt = tmp_path / "train.prototxt"
    prototxt.write_text(with_input(CONV, (2, 3, 8, 8)) + """
        layer { name: "target" type: "Input" top: "target"
                input_param { shape { dim: 2 dim: 2 dim: 6 dim: 6 } } }
        layer { name: "loss" type: "EuclideanLoss" bottom: "conv" bottom: "target" top: "loss" }""")
    solver = tmp_path / "solver.prototxt"
    solver.write_text(f"net: '{prototxt}' base_lr: 0.1 lr_policy: 'fixed' max_iter: 1")
    net = caffe.SGDSolver(str(solver)).net
    with pytest.raises(surgery.SurgeryError, match=r"surgery.pycaffe.Net\(prototxt"):
        surgery.fully_convolutionalize(net)
