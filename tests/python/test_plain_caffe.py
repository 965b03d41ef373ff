"""benchmarks/plain_caffe, the stock-Caffe baseline of benchmarks/dense.py,
computes what surgery.Net computes: otherwise its timings compare nothing.
The benchmark's own runner (surgery.testing.plain_caffe) runs it here."""

import subprocess

import numpy as np
import pytest

import surgery
from surgery import testing


@pytest.fixture
def plain_caffe():
    binary = testing.plain_caffe_binary()
    if not binary.exists():
        pytest.skip(f"{binary} not built (./run.sh test builds it)")
    return binary


def test_same_output_as_surgery_and_a_time_per_run(plain_caffe, lenet, mnist, tmp_path):
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    net.save(tmp_path / "fc.prototxt", tmp_path / "fc.caffemodel")
    canvas = np.zeros((1, 1, 56, 84), np.float32)
    canvas[0, 0, 14:42, 28:56] = mnist[0][0] / 255.0
    times, output = testing.plain_caffe(plain_caffe, tmp_path / "fc.prototxt",
                                        tmp_path / "fc.caffemodel", canvas, 2, "cpu", tmp_path)
    assert len(times) == 2 and min(times) > 0
    expected = net.forward(data=canvas)["prob"]
    assert expected.shape == (1, 10, 8, 15)
    np.testing.assert_array_equal(output, expected.ravel())


def test_refuses_a_short_input_file(plain_caffe, lenet, tmp_path):
    source, result = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(bytes(16))
    done = subprocess.run([str(plain_caffe), *map(str, lenet), "28", "28", "2", "cpu",
                           str(source), str(result)], capture_output=True, text=True)
    assert done.returncode == 1
    assert "holds fewer than 784 floats" in done.stderr
    assert not result.exists()
