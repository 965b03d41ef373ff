"""The seed runs on surgery.pycaffe: Caffe's net-surgery notebook, in its
2014 form (Net.set_mean & co.) and its rc5 form (caffe.io.Transformer),
only ``print`` changed for Python 3, gives the 8x8 map that
surgery.fully_convolutionalize + dense_forward give."""

import runpy
import shutil
import sys

import numpy as np
import pytest

import surgery
import surgery.pycaffe as caffe
from conftest import fixture
from surgery.testing import randomize

# examples/net_surgery.ipynb as of 2014, the cells that make and run the
# fully convolutional net (matplotlib left out).
NOTEBOOK_2014 = """
import numpy as np
import caffe

# Load the original network and extract the fully-connected layers' parameters.
net = caffe.Net('../models/bvlc_reference_caffenet/deploy.prototxt', '../models/bvlc_reference_caffenet/bvlc_reference_caffenet.caffemodel')
params = ['fc6', 'fc7', 'fc8']
# fc_params = {name: (weights, biases)}
fc_params = {pr: (net.params[pr][0].data, net.params[pr][1].data) for pr in params}

for fc in params:
    print('{} weights are {} dimensional and biases are {} dimensional'.format(fc, fc_params[fc][0].shape, fc_params[fc][1].shape))

# Load the fully-convolutional network to transplant the parameters.
net_full_conv = caffe.Net('imagenet/bvlc_caffenet_full_conv.prototxt', '../models/bvlc_reference_caffenet/bvlc_reference_caffenet.caffemodel')
params_full_conv = ['fc6-conv', 'fc7-conv', 'fc8-conv']
# conv_params = {name: (weights, biases)}
conv_params = {pr: (net_full_conv.params[pr][0].data, net_full_conv.params[pr][1].data) for pr in params_full_conv}

for conv in params_full_conv:
    print('{} weights are {} dimensional and biases are {} dimensional'.format(conv, conv_params[conv][0].shape, conv_params[conv][1].shape))

for pr, pr_conv in zip(params, params_full_conv):
    conv_params[pr_conv][1][...] = fc_params[pr][1]

for pr, pr_conv in zip(params, params_full_conv):
    out, in_, h, w = conv_params[pr_conv][0].shape
    W = fc_params[pr][0].reshape((out, in_, h, w))
    conv_params[pr_conv][0][...] = W

net_full_conv.save('imagenet/bvlc_caffenet_full_conv.caffemodel')

# load input and configure preprocessing
im = caffe.io.load_image('images/cat.jpg')
net_full_conv.set_phase_test()
net_full_conv.set_mean('data', np.load('../python/caffe/imagenet/ilsvrc_2012_mean.npy'))
net_full_conv.set_channel_swap('data', (2,1,0))
net_full_conv.set_raw_scale('data', 255.0)
# make classification map by forward and print prediction indices at each location
out = net_full_conv.forward_all(data=np.asarray([net_full_conv.preprocess('data', im)]))
print(out['prob'][0].argmax(axis=0))
"""

# The same cells as of rc5 (BVLC/caffe 9b89154, the fixture's notebook).
NOTEBOOK_RC5 = """
import numpy as np
import caffe

# Load the original network and extract the fully connected layers' parameters.
net = caffe.Net('../models/bvlc_reference_caffenet/deploy.prototxt', 
                '../models/bvlc_reference_caffenet/bvlc_reference_caffenet.caffemodel', 
                caffe.TEST)
params = ['fc6', 'fc7', 'fc8']
# fc_params = {name: (weights, biases)}
fc_params = {pr: (net.params[pr][0].data, net.params[pr][1].data) for pr in params}

for fc in params:
    print('{} weights are {} dimensional and biases are {} dimensional'.format(fc, fc_params[fc][0].shape, fc_params[fc][1].shape))

# Load the fully convolutional network to transplant the parameters.
net_full_conv = caffe.Net('net_surgery/bvlc_caffenet_full_conv.prototxt', 
                          '../models/bvlc_reference_caffenet/bvlc_reference_caffenet.caffemodel',
                          caffe.TEST)
params_full_conv = ['fc6-conv', 'fc7-conv', 'fc8-conv']
# conv_params = {name: (weights, biases)}
conv_params = {pr: (net_full_conv.params[pr][0].data, net_full_conv.params[pr][1].data) for pr in params_full_conv}

for conv in params_full_conv:
    print('{} weights are {} dimensional and biases are {} dimensional'.format(conv, conv_params[conv][0].shape, conv_params[conv][1].shape))

for pr, pr_conv in zip(params, params_full_conv):
    conv_params[pr_conv][0].flat = fc_params[pr][0].flat  # flat unrolls the arrays
    conv_params[pr_conv][1][...] = fc_params[pr][1]

net_full_conv.save('net_surgery/bvlc_caffenet_full_conv.caffemodel')

# load input and configure preprocessing
im = caffe.io.load_image('images/cat.jpg')
transformer = caffe.io.Transformer({'data': net_full_conv.blobs['data'].data.shape})
transformer.set_mean('data', np.load('../python/caffe/imagenet/ilsvrc_2012_mean.npy').mean(1).mean(1))
transformer.set_transpose('data', (2,0,1))
transformer.set_channel_swap('data', (2,1,0))
transformer.set_raw_scale('data', 255.0)
# make classification map by forward and print prediction indices at each location
out = net_full_conv.forward_all(data=np.asarray([transformer.preprocess('data', im)]))
print(out['prob'][0].argmax(axis=0))
"""


@pytest.fixture(scope="module")
def caffe_tree(tmp_path_factory):
    """The files where the notebook looks for them, as in a Caffe checkout
    (run from examples/); CaffeNet with random weights."""
    root = tmp_path_factory.mktemp("caffe")
    models = root / "models" / "bvlc_reference_caffenet"
    models.mkdir(parents=True)
    shutil.copy(fixture("bvlc_reference_caffenet", "deploy.prototxt"), models)
    net = surgery.Net(models / "deploy.prototxt")
    randomize(net, seed=3)
    net.save(weights=models / "bvlc_reference_caffenet.caffemodel")
    full_conv = fixture("bvlc_caffenet_full_conv", "bvlc_caffenet_full_conv.prototxt")
    for folder in ("imagenet", "net_surgery", "images"):
        (root / "examples" / folder).mkdir(parents=True)
        if folder != "images":
            shutil.copy(full_conv, root / "examples" / folder)
    shutil.copy(fixture("caffe_example_images", "cat.jpg"), root / "examples" / "images")
    means = root / "python" / "caffe" / "imagenet"
    means.mkdir(parents=True)
    shutil.copy(fixture("ilsvrc_2012_mean", "ilsvrc_2012_mean.npy"), means)
    return root


def run_notebook(code, root, monkeypatch):
    """The notebook's code as a script in examples/, `import caffe` giving
    surgery.pycaffe; its variables afterwards."""
    script = root / "examples" / "notebook.py"
    script.write_text(code)
    with monkeypatch.context() as patch:
        patch.chdir(root / "examples")
        patch.setitem(sys.modules, "caffe", caffe)
        return runpy.run_path(str(script))


def dense_map(root, mean):
    """surgery's own route: convert, then dense_forward with the same steps
    (keeping the logits: random weights saturate many cells' softmax)."""
    models = root / "models" / "bvlc_reference_caffenet"
    result = surgery.fully_convolutionalize(models / "deploy.prototxt",
                                            models / "bvlc_reference_caffenet.caffemodel")
    steps = surgery.Preprocess(mean=mean, channel_swap=(2, 1, 0), raw_scale=255.0,
                               size=(451, 451))
    return surgery.dense_forward(result.net, root / "examples" / "images" / "cat.jpg",
                                 preprocess=steps, blobs=("fc8-conv",))


def assert_same_map(net, prob, dense):
    """The notebook's map (and its net's fc8-conv logits) as surgery's."""
    np.testing.assert_allclose(prob, dense.scores, atol=1e-5)
    logits = net.blobs["fc8-conv"].data[0]
    np.testing.assert_allclose(logits, dense.features("fc8-conv")[0],
                               atol=1e-5 * np.abs(logits).max())


@pytest.mark.slow
def test_the_2014_notebook_gives_surgerys_map(caffe_tree, monkeypatch, capsys):
    ns = run_notebook(NOTEBOOK_2014, caffe_tree, monkeypatch)
    assert "fc6 weights are (4096, 9216) dimensional" in capsys.readouterr().out
    prob = ns["out"]["prob"][0]
    assert prob.shape == (1000, 8, 8)
    mean = np.load(caffe_tree / "python" / "caffe" / "imagenet" / "ilsvrc_2012_mean.npy")
    assert_same_map(ns["net_full_conv"], prob, dense_map(caffe_tree, mean))
    # The caffemodel it saved holds the transplanted weights.
    examples = caffe_tree / "examples" / "imagenet"
    saved = surgery.Net(examples / "bvlc_caffenet_full_conv.prototxt",
                        examples / "bvlc_caffenet_full_conv.caffemodel")
    x = ns["net_full_conv"].blobs["data"].data
    np.testing.assert_allclose(saved.forward(data=x)["prob"][0], prob, atol=1e-5)


@pytest.mark.slow
def test_the_rc5_notebook_gives_the_same_map_as_the_2014_api(caffe_tree, monkeypatch):
    rc5_ns = run_notebook(NOTEBOOK_RC5, caffe_tree, monkeypatch)
    rc5 = rc5_ns["out"]["prob"][0]
    mean = np.load(caffe_tree / "python" / "caffe" / "imagenet" / "ilsvrc_2012_mean.npy")
    dense = dense_map(caffe_tree, mean.mean(1).mean(1))
    assert_same_map(rc5_ns["net_full_conv"], rc5, dense)
    # The 2014 API with the mean pixel, as rc5 subtracts it.
    ns = run_notebook(NOTEBOOK_2014, caffe_tree, monkeypatch)
    net, im = ns["net_full_conv"], ns["im"]
    net.set_mean("data", mean, mode="channel")
    old = net.forward_all(data=np.asarray([net.preprocess("data", im)]))["prob"][0]
    assert_same_map(net, old, dense)
