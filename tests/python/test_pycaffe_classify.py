"""Upstream's python/classify.py, taken unchanged from the sdist the recipe
builds libcaffe from, runs on surgery.pycaffe: on trained LeNet it scores
MNIST as surgery.Net does, on CaffeNet (random weights) it gives the
10-crop average computed here by hand with surgery.Net."""

import subprocess
import sys

import numpy as np
import pytest

import surgery
from conftest import fixture
from surgery.preprocess import load_image, resize_image
from surgery.testing import random_model
from test_pycaffe_upstream import upstream

# `import caffe` in the script gives surgery.pycaffe.
RUN_AS_CAFFE = ("import runpy, sys, surgery.pycaffe; surgery.pycaffe.register_as_caffe(); "
                "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


@pytest.fixture(scope="module")
def classify_py(tmp_path_factory):
    """python/classify.py, extracted from the sdist (checked against the recipe's pin)."""
    try:
        sdist = upstream().open_sdist()
    except FileNotFoundError as missing:
        pytest.skip(str(missing))
    script = tmp_path_factory.mktemp("classify") / "classify.py"
    with sdist:
        script.write_text(upstream().member_text(sdist, "python/classify.py"))
    return script


def classify(script, *arguments, cwd):
    """Runs classify.py with `arguments`; its predictions (N x classes)."""
    run = subprocess.run([sys.executable, "-c", RUN_AS_CAFFE, str(script), *map(str, arguments)],
                         cwd=cwd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "CPU mode" in run.stdout and "Saving results" in run.stdout, run.stdout
    return np.load(cwd / "predictions.npy")


@pytest.mark.slow
def test_classify_py_scores_mnist_as_surgery_net_does(classify_py, lenet, mnist, tmp_path):
    images, labels = mnist[0][:2000], mnist[1][:2000]
    pixels = (images.astype(np.float32) / 255.0)[..., np.newaxis]  # N x 28 x 28 x 1 in [0, 1]
    np.save(tmp_path / "digits.npy", pixels)
    predictions = classify(classify_py, "digits.npy", "predictions.npy",
                           "--model_def", lenet[0], "--pretrained_model", lenet[1],
                           "--images_dim", "28,28", "--center_only", "--mean_file", "",
                           "--raw_scale", "1", "--channel_swap", "", cwd=tmp_path)
    assert predictions.shape == (len(labels), 10)
    ours = surgery.Net(*lenet).forward(data=pixels.transpose(0, 3, 1, 2))["prob"]
    np.testing.assert_allclose(predictions, ours, atol=1e-5)
    accuracy = (predictions.argmax(axis=1) == labels).mean()
    assert accuracy == (ours.argmax(axis=1) == labels).mean()
    assert accuracy > 0.98  # the fixture's provenance: 0.9914 on all 10,000, by an independent forward


@pytest.mark.slow
def test_classify_py_averages_caffenets_ten_crops(classify_py, tmp_path):
    proto, model = random_model(fixture("bvlc_reference_caffenet", "deploy.prototxt"), tmp_path,
                                seed=2)
    cat = fixture("caffe_example_images", "cat.jpg")
    mean = fixture("ilsvrc_2012_mean", "ilsvrc_2012_mean.npy")
    predictions = classify(classify_py, cat, "predictions.npy", "--model_def", proto,
                           "--pretrained_model", model, "--mean_file", mean, cwd=tmp_path)
    # By hand: 256 x 256, the four corners' and the centre's 227 x 227 crops
    # and their mirrors, each preprocessed, the ten answers averaged.
    image = resize_image(load_image(cat), (256, 256))
    crops = [image[i:i + 227, j:j + 227] for i, j in [(0, 0), (0, 29), (29, 0), (29, 29),
                                                        (14, 14)]]
    crops += [crop[:, ::-1] for crop in crops]
    steps = surgery.Preprocess(mean=np.load(mean), channel_swap=(2, 1, 0), raw_scale=255.0)
    batch = np.stack([steps(crop, 3)[1] for crop in crops])
    expected = surgery.Net(proto, model).forward(data=batch)["prob"].mean(axis=0)
    assert predictions.shape == (1, 1000)
    # The Transformer computes in float64, Preprocess in float32: the ten
    # crops' scores differ in their float32 rounding (5e-5 relative seen).
    np.testing.assert_allclose(predictions[0], expected.reshape(-1), rtol=2e-4, atol=1e-6)
