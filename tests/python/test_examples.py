"""The example scripts run end to end (random weights stand in for BVLC's)."""

import importlib.util
import pathlib

import numpy as np
import pytest

from conftest import fixture
from surgery.testing import random_model

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_net_surgery_caffenet_example(tmp_path, capsys):
    proto, model = random_model(fixture("bvlc_reference_caffenet", "deploy.prototxt"), tmp_path)
    dense = load("net_surgery_caffenet").main([
        str(proto), str(model), "--image", str(fixture("caffe_example_images", "cat.jpg")),
        "--mean", str(fixture("ilsvrc_2012_mean", "ilsvrc_2012_mean.npy")),
        "--labels", str(fixture("imagenet_labels", "imagenet-classes.ethereon.txt")),
        "-o", str(tmp_path / "out")])
    assert dense.shape == (8, 8)
    assert dense.label(281) == "tabby"
    np.testing.assert_allclose(dense.scores.sum(axis=0), 1, atol=1e-4)
    printed = capsys.readouterr().out
    assert "fc6 (InnerProduct 4096x9216) -> fc6-conv" in printed and "8x8 map" in printed
    assert (tmp_path / "out" / "net_surgery_cat.png").exists()
