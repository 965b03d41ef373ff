"""The caffe-surgery command, run as a user would."""

import subprocess
import sys

import skimage.io

from conftest import fixture


def cli(*args):
    return subprocess.run([sys.executable, "-m", "surgery.cli", *map(str, args)],
                          capture_output=True, text=True)


def test_demo_command_finds_every_pasted_digit(tmp_path):
    """The demo, run once in the suite, as a user runs it."""
    result = subprocess.run([sys.executable, "-m", "surgery.cli", "demo"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "6/6 pasted digits found at their place" in result.stdout
    assert skimage.io.imread(tmp_path / "dense_digits.png").shape == (450, 1000, 4)


def test_convert_trained_lenet(tmp_path, lenet):
    result = cli("convert", *lenet, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ip1 (InnerProduct 500x800) -> ip1-conv (Convolution 4x4" in result.stdout
    assert "28x28 window at stride 4x4" in result.stdout
    assert (tmp_path / "lenet_full_conv.prototxt").exists()
    assert (tmp_path / "lenet_iter_10000_full_conv.caffemodel").exists()


def test_convert_definition_only(tmp_path):
    deploy = fixture("bvlc_alexnet", "deploy.prototxt")
    result = cli("convert", deploy, "-o", tmp_path, "--keep-names")
    assert result.returncode == 0, result.stderr
    assert "fc6 (InnerProduct 4096x9216) -> fc6 (Convolution 6x6" in result.stdout
    assert not list(tmp_path.glob("*.caffemodel"))


def test_errors_are_one_line_and_exit_1(tmp_path):
    result = cli("convert", tmp_path / "absent.prototxt", "-o", tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("caffe-surgery: FileError:") and "Traceback" not in result.stderr
