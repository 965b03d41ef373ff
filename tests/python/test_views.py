"""Net.blobs and Net.params are lazy: looking one up touches no other."""

import numpy as np
import pytest

import surgery


def test_one_lookup_leaves_the_other_blobs_alone(lenet):
    net = surgery.Net(*lenet)
    names = list(net.blobs)
    before = {name: net.head(name) for name in names}
    assert before["ip2"] == "uninitialized" and before["conv1"] == "uninitialized"
    view = net.blobs["data"]
    assert view.shape == (64, 1, 28, 28)
    after = {name: net.head(name) for name in names}
    assert after["data"] == "cpu"
    assert {n: h for n, h in after.items() if n != "data"} == \
        {n: h for n, h in before.items() if n != "data"}


def test_one_param_lookup_leaves_the_other_layers_alone(lenet):
    net = surgery.Net(*lenet)
    layers = list(net.params)
    assert layers == ["conv1", "conv2", "ip1", "ip2"]
    before = {layer: net.param_heads(layer) for layer in layers}
    net.params["ip2"][0][...] = 0
    after = {layer: net.param_heads(layer) for layer in layers}
    assert {k: v for k, v in after.items() if k != "ip2"} == \
        {k: v for k, v in before.items() if k != "ip2"}


def test_views_follow_the_net(lenet):
    net = surgery.Net(*lenet)
    blobs = net.blobs  # taken before the surgery renames blobs
    surgery.fully_convolutionalize(net)
    assert "ip1-conv" in blobs and "ip1" not in blobs
    assert len(blobs) == len(list(blobs)) == len(net._blob_names())
    with pytest.raises(KeyError):
        blobs["ip1"]
    assert np.shares_memory(blobs["ip1-conv"], net.blobs["ip1-conv"])
    assert net.params.get("absent") is None
