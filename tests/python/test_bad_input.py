"""Each kind of bad input raises a typed surgery exception naming the file,
layer and shapes; the interpreter survives and loads a good net afterwards."""

import numpy as np
import pytest

import surgery
from conftest import TINY_NET


@pytest.fixture(autouse=True)
def still_works_afterwards(tiny_prototxt):
    yield
    net = surgery.Net(tiny_prototxt)
    assert net.forward(data=np.ones((1, 1, 4, 4)))["fc"].shape == (1, 2)


def write(path, text):
    path.write_text(text)
    return path


def test_missing_prototxt(tmp_path, loader):
    path = tmp_path / "absent.prototxt"
    with pytest.raises(surgery.FileError, match="absent.prototxt.*No such file") as info:
        loader.net(path)
    assert isinstance(info.value, OSError)


def test_garbage_prototxt_names_line(tmp_path, loader):
    path = write(tmp_path / "bad.prototxt", 'layer { name: "a"\n  type: ReLU ]\n')
    with pytest.raises(surgery.ParseError, match=r"bad\.prototxt.*line 2"):
        loader.net(path)


def test_binary_file_given_as_prototxt(tmp_path, loader):
    path = tmp_path / "model.prototxt"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(surgery.ParseError, match="model.prototxt"):
        loader.net(path)


def test_unknown_layer_type(tmp_path, loader):
    path = write(tmp_path / "u.prototxt", """
      layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 } } }
      layer { name: "mystery" type: "Frobnicate" bottom: "data" top: "out" }""")
    with pytest.raises(surgery.NetDefinitionError, match="'mystery'.*Frobnicate"):
        loader.net(path)


def test_python_layer_refused(tmp_path, loader):
    path = write(tmp_path / "p.prototxt", """
      layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 } } }
      layer { name: "py" type: "Python" bottom: "data" top: "out" }""")
    with pytest.raises(surgery.NetDefinitionError, match="arbitrary code"):
        loader.net(path)


def test_bottom_that_does_not_exist(tmp_path, loader):
    path = write(tmp_path / "b.prototxt", """
      layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 } } }
      layer { name: "relu" type: "ReLU" bottom: "dta" top: "out" }""")
    with pytest.raises(surgery.NetDefinitionError, match="'relu'.*'dta'"):
        loader.net(path)


def test_missing_caffemodel(tiny_prototxt, tmp_path, loader):
    with pytest.raises(surgery.FileError, match="absent.caffemodel"):
        loader.net(tiny_prototxt, tmp_path / "absent.caffemodel")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_caffemodel(tiny_prototxt, tmp_path, damage, loader):
    model = tmp_path / "tiny.caffemodel"
    surgery.Net(tiny_prototxt).save(weights=model)
    data = model.read_bytes()
    model.write_bytes({"truncate": data[:-7], "garbage": b"\xff" * 40, "empty": b""}[damage])
    with pytest.raises(surgery.ParseError, match="tiny.caffemodel"):
        loader.net(tiny_prototxt, model)


def test_weights_of_wrong_shape_name_layer_and_shapes(tiny_prototxt, tmp_path):
    wide = write(tmp_path / "wide.prototxt", TINY_NET.replace("num_output: 2", "num_output: 3"))
    model = tmp_path / "wide.caffemodel"
    surgery.Net(wide).save(weights=model)
    net = surgery.Net(tiny_prototxt)
    net.params["conv"][0][...] = 42
    with pytest.raises(surgery.ShapeError,
                       match=r"wide\.caffemodel.*'fc'.*3 x 9 \(27\).*2 x 9 \(18\)"):
        net.load_weights(model)
    # Nothing was copied, not even the conv layer that comes first in the file.
    assert (net.params["conv"][0] == 42).all()


def test_input_the_inner_product_cannot_take(tiny_prototxt):
    net = surgery.Net(tiny_prototxt)
    with pytest.raises(surgery.ShapeError, match="'fc' takes 9 values.*1 x 1 x 5 x 5.*"
                                                 "fully_convolutionalize"):
        net.forward(data=np.ones((1, 1, 5, 5)))
    assert net.blobs["data"].shape == (1, 1, 4, 4)


def test_bad_phase_and_unknown_names(tiny_prototxt):
    with pytest.raises(surgery.SurgeryError, match="phase"):
        surgery.Net(tiny_prototxt, phase="eval")
    net = surgery.Net(tiny_prototxt)
    with pytest.raises(surgery.SurgeryError, match="not an input"):
        net.forward(conv=np.ones((1, 1, 3, 3)))
