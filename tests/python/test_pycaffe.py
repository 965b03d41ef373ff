"""surgery.pycaffe: pycaffe's interface over our loader. pycaffe's own tests
(test_pycaffe_upstream.py) check the interface; these check what the face
adds: the same refusals as surgery.Net, independent oracles, zero-copy views."""
import os
import pathlib
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest

import surgery
import surgery.pycaffe as caffe
from surgery.errors import FileError, NetDefinitionError, ShapeError

from conftest import TINY_NET, opencv_caffe_reader

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "hardening"))
from forkrun import run_isolated  # noqa: E402
from test_device import needs_gpu  # noqa: E402

PYTHON_LAYER_NET = """
name: "python" force_backward: true
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }
layer { type: "Python" name: "times" bottom: "data" top: "times"
        python_param { module: "%s" layer: "Times" param_str: "7" } }
"""

# Importing it leaves a mark: the refusal must come before any import.
PYTHON_LAYER_MODULE = """
import pathlib
import surgery.pycaffe as caffe
pathlib.Path(__file__).with_name("imported").write_text("yes")

class Times(caffe.Layer):
    def setup(self, bottom, top):
        self.factor = float(self.param_str)
    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)
    def forward(self, bottom, top):
        top[0].data[...] = self.factor * bottom[0].data
    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = self.factor * top[0].diff
"""


@pytest.fixture
def policy():
    """Restores the process-wide load policy after a test that changes it."""
    yield caffe.set_load_policy
    caffe.set_load_policy(python_layers=False, io_layers=False)


def python_layer_files(tmp_path, monkeypatch):
    module = f"times_{tmp_path.name}"
    (tmp_path / f"{module}.py").write_text(PYTHON_LAYER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    prototxt = tmp_path / "python.prototxt"
    prototxt.write_text(PYTHON_LAYER_NET % module)
    return prototxt


def test_python_layers_are_refused_before_anything_is_imported(tmp_path, monkeypatch):
    prototxt = python_layer_files(tmp_path, monkeypatch)
    with pytest.raises(NetDefinitionError,
                       match=r"'times'.*runs arbitrary code.*set_load_policy\(python_layers=True\)"):
        caffe.Net(str(prototxt), caffe.TEST)
    assert not (tmp_path / "imported").exists()


def test_python_layers_run_once_opted_in(tmp_path, monkeypatch, policy):
    prototxt = python_layer_files(tmp_path, monkeypatch)
    policy(python_layers=True, io_layers=False)
    net = caffe.Net(str(prototxt), caffe.TRAIN)
    x = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)
    np.testing.assert_array_equal(net.forward(data=x)["times"], 7 * x)
    net.blobs["times"].diff[...] = 1
    net.backward()
    np.testing.assert_array_equal(net.blobs["data"].diff, np.full((2, 3), 7, np.float32))
    assert net.layers[1].type == "Python"


def test_file_touching_layers_are_refused_as_by_surgery_net(tmp_path):
    prototxt = tmp_path / "dump.prototxt"
    prototxt.write_text(TINY_NET + """
layer { name: "dump" type: "HDF5Output" bottom: "fc" bottom: "conv"
        hdf5_output_param { file_name: "%s" } }""" % (tmp_path / "out.h5"))
    for load in (lambda: surgery.Net(str(prototxt)), lambda: caffe.Net(str(prototxt), caffe.TEST)):
        with pytest.raises(NetDefinitionError, match="dump"):
            load()
    assert not (tmp_path / "out.h5").exists()


def test_weights_of_the_wrong_shape_are_a_shape_error_naming_the_layer(tmp_path):
    small = tmp_path / "small.prototxt"
    small.write_text(TINY_NET)
    wide = tmp_path / "wide.prototxt"
    wide.write_text(TINY_NET.replace("num_output: 2", "num_output: 3"))
    weights = tmp_path / "wide.caffemodel"
    caffe.Net(str(wide), caffe.TEST).save(str(weights))
    with pytest.raises(ShapeError, match="fc"):
        caffe.Net(str(small), caffe.TEST, weights=str(weights))
    net = caffe.Net(str(small), caffe.TEST)
    before = net.params["fc"][0].data.copy()
    with pytest.raises(ShapeError, match="fc"):
        net.copy_from(str(weights))
    np.testing.assert_array_equal(net.params["fc"][0].data, before)


def test_forward_equals_opencv_on_trained_lenet(lenet, mnist):
    prototxt, weights = lenet
    net = caffe.Net(str(prototxt), caffe.TEST, weights=str(weights))
    images = mnist[0][:64, None].astype(np.float32) / 255
    ours = net.forward(data=images)["prob"]
    reader = opencv_caffe_reader()(str(prototxt), str(weights))
    reader.setInput(images)
    np.testing.assert_allclose(ours.reshape(64, 10), reader.forward().reshape(64, 10), atol=1e-5)
    assert (ours.reshape(64, 10).argmax(1) == mnist[1][:64]).mean() > 0.95


def test_data_views_share_the_nets_memory_and_writes_reach_the_next_forward(lenet, mnist):
    prototxt, weights = lenet
    net = caffe.Net(str(prototxt), caffe.TEST, weights=str(weights))
    view = net.blobs["data"].data
    assert np.shares_memory(view, net.blobs["data"].data)
    images = mnist[0][:64, None].astype(np.float32) / 255
    expected = net.forward(data=images)["prob"].copy()
    view[...] = 0
    assert not np.allclose(net.forward()["prob"], expected)
    view[...] = images
    np.testing.assert_array_equal(net.forward()["prob"], expected)
    weights_view = net.params["conv1"][0].data
    assert np.shares_memory(weights_view, net.params["conv1"][0].data)


def test_solvers_refuse_nets_the_policy_refuses(tmp_path, monkeypatch):
    prototxt = python_layer_files(tmp_path, monkeypatch)
    solver = tmp_path / "solver.prototxt"
    solver.write_text(f"net: '{prototxt}' base_lr: 0.1 lr_policy: 'fixed' max_iter: 1")
    with pytest.raises(NetDefinitionError, match="times"):
        caffe.SGDSolver(str(solver))
    assert not (tmp_path / "imported").exists()


def test_hdf5_weights_and_solver_states_are_read_only_when_trusted(tmp_path, policy):
    prototxt = tmp_path / "tiny.prototxt"
    prototxt.write_text(TINY_NET)
    net = caffe.Net(str(prototxt), caffe.TEST)
    net.save_hdf5(str(tmp_path / "tiny.h5"))
    other = caffe.Net(str(prototxt), caffe.TEST)
    with pytest.raises(FileError, match="tiny.h5.*io_layers=True"):
        other.load_hdf5(str(tmp_path / "tiny.h5"))
    policy(python_layers=False, io_layers=True)
    other.load_hdf5(str(tmp_path / "tiny.h5"))
    np.testing.assert_array_equal(other.params["fc"][0].data, net.params["fc"][0].data)


def test_save_hdf5_replaces_a_plain_file_whole_keeping_its_mode(tmp_path):
    prototxt = tmp_path / "tiny.prototxt"
    prototxt.write_text(TINY_NET)
    net = caffe.Net(str(prototxt), caffe.TEST)
    target = tmp_path / "tiny.h5"
    target.write_bytes(b"an earlier save")
    target.chmod(0o640)
    net.save_hdf5(str(target))
    assert target.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n" and target.stat().st_mode & 0o777 == 0o640
    saved = target.read_bytes()
    fifo = tmp_path / "fifo.h5"
    os.mkfifo(fifo)
    with pytest.raises(FileError, match="fifo.h5"):
        net.save_hdf5(str(fifo))
    assert run_isolated(on_a_full_disk(lambda: net.save_hdf5(str(target)), 512)).kind == "error"
    assert target.read_bytes() == saved
    assert sorted(os.listdir(tmp_path)) == ["fifo.h5", "tiny.h5", "tiny.prototxt"]

def test_register_as_caffe_refuses_to_shadow_another_caffe():
    # In a child: the aliases are process-wide.
    code = ("import sys, types\n"
            "sys.modules['caffe'] = types.ModuleType('caffe')\n"
            "import surgery.pycaffe\n"
            "try:\n"
            "    surgery.pycaffe.register_as_caffe()\n"
            "except ImportError as refused:\n"
            "    print('refused:', refused)\n"
            "import caffe\n"
            "print('kept' if not hasattr(caffe, 'Net') else 'replaced')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "refused: another caffe is imported already" in run.stdout, run.stderr
    assert "kept" in run.stdout


def test_register_as_caffe_makes_pycaffe_imports_resolve_here():
    code = ("import surgery.pycaffe\n"
            "surgery.pycaffe.register_as_caffe()\n"
            "import caffe, caffe.io\n"
            "from caffe.proto import caffe_pb2\n"
            "from google.protobuf import text_format\n"
            "net = text_format.Parse('layer { name: \"a\" type: \"Input\" }', caffe_pb2.NetParameter())\n"
            "assert caffe is surgery.pycaffe and caffe.io is surgery.pycaffe.io\n"
            "print(net.layer[0].type, caffe_pb2.TEST)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == ["Input", "1"], run.stderr


FORK_WHILE_PYTHON_LAYERS_RUN = """
import os, sys, threading
import numpy as np
sys.path.insert(0, sys.argv[1])
import surgery.pycaffe as caffe
caffe.set_load_policy(python_layers=True, io_layers=False)
net = caffe.Net(sys.argv[2], caffe.TEST)
x = np.ones((2, 3), np.float32)

def forward_many():
    for _ in range(3000):
        net.forward(data=x)

worker = threading.Thread(target=forward_many)
worker.start()
while worker.is_alive():
    pid = os.fork()  # holds the GIL until the fork is done
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
worker.join()
print("done")
"""


def test_a_fork_while_a_python_layer_waits_for_the_gil_does_not_hang(tmp_path, monkeypatch):
    # fork() waits for every thread to leave Caffe (fork_gate.hpp) while the
    # forking thread holds the GIL; a Python layer must not wait for the GIL
    # inside Caffe. In a child process: a hang must not hang the suite.
    prototxt = python_layer_files(tmp_path, monkeypatch)
    run = subprocess.run([sys.executable, "-c", FORK_WHILE_PYTHON_LAYERS_RUN, str(tmp_path),
                          str(prototxt)], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "done", run.stderr[-2000:]


def test_the_memory_limit_holds_for_blobs_reshaped_through_the_face(tmp_path):
    prototxt = tmp_path / "tiny.prototxt"
    prototxt.write_text(TINY_NET)
    net = caffe.Net(str(prototxt), caffe.TEST)
    surgery.set_memory_limit(64 << 20)
    try:
        blob = net.blobs["data"]
        blob.reshape(1, 1, 10000, 10000)  # 400 MB, taken when first touched
        with pytest.raises(surgery.MemoryLimitError, match="memory limit"):
            blob.data[...] = 1
        big = tmp_path / "big.prototxt"
        big.write_text(TINY_NET.replace("dim: 4 dim: 4", "dim: 10000 dim: 10000"))
        with pytest.raises(surgery.MemoryLimitError, match="memory limit"):
            caffe.Net(str(big), caffe.TEST)
        blob.reshape(1, 1, 4, 4)
        net.reshape()
        assert net.forward(data=np.ones((1, 1, 4, 4), np.float32))["fc"].shape == (1, 2)
    finally:
        surgery.set_memory_limit(0)


def test_io_resize_image_agrees_with_opencv_inside_the_border():
    # The fork's io.py lost the import resize_image needs (put back at install).
    import cv2
    image = np.random.default_rng(1).random((8, 10, 3)).astype(np.float32)
    ours = caffe.io.resize_image(image, (16, 20))
    theirs = cv2.resize(image, (20, 16), interpolation=cv2.INTER_LINEAR)
    assert ours.shape == (16, 20, 3) and ours.dtype == np.float32
    # Inside: both interpolate between the same pixel centres; at the border
    # skimage's mode='constant' and OpenCV's replicated edge differ.
    np.testing.assert_allclose(ours[2:-2, 2:-2], theirs[2:-2, 2:-2], atol=1e-5)


def on_a_full_disk(write, limit):
    """`write` as a case for run_isolated, its files limited to `limit` bytes:
    the file-size limit fails a write as a full disk does (EFBIG, SIGXFSZ
    ignored)."""
    def case():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        write()
    return case


def small_solver_files(folder):
    (folder / "net.prototxt").write_text("""
layer { name: "data" type: "DummyData" top: "data" top: "label"
        dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 }
                           data_filler { type: "constant" value: 0.5 } data_filler { type: "constant" } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 2 weight_filler { type: "constant" value: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }""")
    (folder / "solver.prototxt").write_text(
        "net: 'net.prototxt' base_lr: 0.1 momentum: 0.9 lr_policy: 'fixed' max_iter: 10 "
        "snapshot_prefix: 'snap' snapshot_after_train: false")


def test_a_solver_restored_from_its_snapshot_goes_on_where_it_stopped(tmp_path, monkeypatch):
    # The oracle: the solver that was never interrupted.
    monkeypatch.chdir(tmp_path)
    small_solver_files(tmp_path)
    straight = caffe.SGDSolver("solver.prototxt")
    straight.step(2)
    straight.snapshot()
    straight.step(2)
    resumed = caffe.SGDSolver("solver.prototxt")
    resumed.restore("snap_iter_2.solverstate")
    assert resumed.iter == 2
    resumed.step(2)
    np.testing.assert_array_equal(resumed.net.params["ip"][0].data, straight.net.params["ip"][0].data)
    (tmp_path / "snap_iter_2.solverstate").write_bytes(b"\x0a\xff")
    with pytest.raises(surgery.errors.ParseError, match="snap_iter_2.solverstate"):
        caffe.SGDSolver("solver.prototxt").restore("snap_iter_2.solverstate")



def test_a_snapshot_that_cannot_be_written_leaves_the_earlier_one_whole(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    small_solver_files(tmp_path)
    solver = caffe.SGDSolver("solver.prototxt")
    solver.step(2)
    solver.snapshot()
    names = ["net.prototxt", "snap_iter_2.caffemodel", "snap_iter_2.solverstate", "solver.prototxt"]
    earlier = {name: (tmp_path / name).read_bytes() for name in names}
    solver.net.params["ip"][0].data[...] = 7  # another snapshot under the same names

    outcome = run_isolated(on_a_full_disk(solver.snapshot, 16))
    assert (outcome.kind, outcome.detail) == ("error", "CaffeError"), outcome
    assert "snap_iter_2.caffemodel" in outcome.message
    assert sorted(os.listdir(tmp_path)) == names
    assert {name: (tmp_path / name).read_bytes() for name in names} == earlier

CALLS_ITS_OWN_NET = """
import sys
import numpy as np
import surgery, surgery.pycaffe as caffe

class Reentrant(caffe.Layer):
    def setup(self, bottom, top):
        pass
    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)
    def forward(self, bottom, top):
        if NET:
            NET[0].forward()  # the net that runs this layer
        top[0].data[...] = bottom[0].data

NET = []
sys.modules["reentrant"] = sys.modules[__name__]
caffe.set_load_policy(python_layers=True, io_layers=False)
net = caffe.Net(sys.argv[1], caffe.TEST)
NET.append(net)
try:
    net.forward(data=np.ones((2, 3), np.float32))
except surgery.SurgeryError as refused:
    print("refused:", refused)
NET.clear()
print("then", net.forward(data=np.ones((2, 3), np.float32))["times"].sum())
"""


def test_a_python_layer_calling_its_own_net_is_refused_not_deadlocked(tmp_path):
    prototxt = tmp_path / "reentrant.prototxt"
    prototxt.write_text(PYTHON_LAYER_NET.replace('module: "%s" layer: "Times"',
                                                 'module: "reentrant" layer: "Reentrant"'))
    # A child process: a deadlock must not hang the suite.
    run = subprocess.run([sys.executable, "-c", CALLS_ITS_OWN_NET, str(prototxt)],
                         capture_output=True, text=True, timeout=60)
    assert "refused: this net is already running a call on this thread" in run.stdout, run.stderr
    assert "then 6.0" in run.stdout, run.stderr  # and the net stays usable



def test_set_input_arrays_feeds_a_memory_data_layer_batch_by_batch(tmp_path):
    prototxt = tmp_path / "memory.prototxt"
    prototxt.write_text("""
layer { name: "data" type: "MemoryData" top: "data" top: "label"
        memory_data_param { batch_size: 2 channels: 1 height: 2 width: 3 } }""")
    net = caffe.Net(str(prototxt), caffe.TEST)
    data = np.arange(4 * 6, dtype=np.float32).reshape(4, 1, 2, 3)
    labels = np.array([3, 1, 4, 1], np.float32)
    net.set_input_arrays(data, labels)
    for batch in range(2):  # the layer reads the arrays in place, in order
        out = net.forward()
        np.testing.assert_array_equal(out["data"], data[2 * batch:2 * batch + 2])
        np.testing.assert_array_equal(out["label"].ravel(), labels[2 * batch:2 * batch + 2])
    with pytest.raises(ShapeError, match="multiple of the batch size"):
        net.set_input_arrays(data[:3], labels[:3])
    with pytest.raises(ShapeError, match="float32"):
        net.set_input_arrays(data.astype(np.float64), labels)


@needs_gpu
def test_in_gpu_mode_a_data_view_syncs_its_own_blob_only(lenet):
    """pycaffe's `.data` in GPU mode: reading one blob brings that blob to
    the host and leaves every other blob on the device; a write through the
    view is what the next forward reads. Oracle: the same net in CPU mode."""
    digits = np.random.default_rng(3).random((64, 1, 28, 28), dtype=np.float32)
    cpu = caffe.Net(str(lenet[0]), caffe.TEST, weights=str(lenet[1]))
    cpu.blobs["data"].data[...] = digits
    expected = cpu.forward()["prob"].copy()
    caffe.set_mode_gpu()
    try:
        face = caffe.Net(str(lenet[0]), caffe.TEST, weights=str(lenet[1]))
        face.blobs["data"].data[...] = digits
        face.forward()
        heads = face.surgery_net()
        assert all(heads.head(b) == "gpu" for b in face.blobs if b != "data")
        ip1 = face.blobs["ip1"].data
        np.testing.assert_allclose(ip1, cpu.blobs["ip1"].data, rtol=1e-4, atol=1e-5)
        assert heads.head("ip1") in ("cpu", "synced")
        assert all(heads.head(b) == "gpu" for b in face.blobs if b not in ("data", "ip1"))
        np.testing.assert_allclose(face.forward()["prob"], expected, rtol=1e-4, atol=1e-6)
    finally:
        caffe.set_mode_cpu()
