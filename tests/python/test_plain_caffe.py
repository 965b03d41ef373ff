"""benchmarks/plain_caffe, the stock-Caffe baseline of benchmarks/dense.py,
computes what surgery.Net computes: otherwise its timings compare nothing."""

import pathlib
import subprocess

import numpy as np
import pytest

import surgery
from conftest import REPO

PLAIN_CAFFE = REPO / "build" / "test" / "benchmarks" / "plain_caffe"


@pytest.fixture
def plain_caffe():
    if not PLAIN_CAFFE.exists():
        pytest.skip(f"{PLAIN_CAFFE} not built (./run.sh test builds it)")
    return PLAIN_CAFFE


def run(binary, prototxt, model, shape, data: bytes, folder: pathlib.Path):
    """plain_caffe on `data` (float32 bytes) at `shape`: (process, output file)."""
    source, result = folder / "in.bin", folder / "out.bin"
    source.write_bytes(data)
    done = subprocess.run([str(binary), str(prototxt), str(model), *map(str, shape[2:]),
                           "2", "cpu", str(source), str(result)],
                          capture_output=True, text=True)
    return done, result


def test_same_output_as_surgery_and_a_time_per_run(plain_caffe, lenet, mnist, tmp_path):
    net = surgery.Net(*lenet)
    net.fully_convolutionalize()
    net.save(tmp_path / "fc.prototxt", tmp_path / "fc.caffemodel")
    canvas = np.zeros((1, 1, 56, 84), np.float32)
    canvas[0, 0, 14:42, 28:56] = mnist[0][0] / 255.0
    done, result = run(plain_caffe, tmp_path / "fc.prototxt", tmp_path / "fc.caffemodel",
                       canvas.shape, canvas.tobytes(), tmp_path)
    assert done.returncode == 0, done.stderr
    times = [float(line) for line in done.stdout.split()]
    assert len(times) == 2 and min(times) > 0
    expected = net.forward(data=canvas)["prob"]
    assert expected.shape == (1, 10, 8, 15)
    np.testing.assert_array_equal(np.fromfile(result, np.float32), expected.ravel())


def test_refuses_a_short_input_file(plain_caffe, lenet, tmp_path):
    done, result = run(plain_caffe, *lenet, (1, 1, 28, 28), bytes(16), tmp_path)
    assert done.returncode == 1
    assert "holds fewer than 784 floats" in done.stderr
    assert not result.exists()
