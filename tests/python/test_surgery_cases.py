"""Surgery on small nets built here: each structural case and each refusal."""

import numpy as np
import pytest

import surgery
from surgery.testing import randomize, with_input

CONV = ('layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" '
        'convolution_param { num_output: 3 kernel_size: 3 } }\n')


def build(tmp_path, body, shape=(1, 2, 6, 5)):
    path = tmp_path / "net.prototxt"
    path.write_text(with_input(body, shape))
    net = surgery.Net(path)
    randomize(net, seed=7)
    return net


def converted_twin(net, tmp_path, **kwargs):
    """Save `net`, convert the copy; return (result, converted net)."""
    net.save(tmp_path / "a.prototxt", tmp_path / "a.caffemodel")
    twin = surgery.Net(tmp_path / "a.prototxt", tmp_path / "a.caffemodel")
    return surgery.fully_convolutionalize(twin, **kwargs), twin


def assert_same_at_declared_size(net, twin, output, shape=(1, 2, 6, 5)):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    expected = net.forward(data=x)[output]
    got = twin.forward(data=x)[twin.outputs[0]]
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("passthrough", [
    'layer { name: "flat" type: "Flatten" bottom: "conv" top: "flat" }',
    'layer { name: "flat" type: "Reshape" bottom: "conv" top: "flat" '
    'reshape_param { shape { dim: 0 dim: -1 } } }',
])
def test_flatten_or_reshape_before_inner_product_is_removed(tmp_path, passthrough):
    net = build(tmp_path, CONV + passthrough + '\nlayer { name: "fc" type: "InnerProduct" '
                'bottom: "flat" top: "fc" inner_product_param { num_output: 4 } }')
    result, twin = converted_twin(net, tmp_path)
    assert result.removed == ["flat"]
    assert result.layers[0].kernel == (4, 3)
    assert "flat" not in [layer.name for layer in twin.layers]
    assert_same_at_declared_size(net, twin, "fc")
    # 9x9 input -> 7x7 conv map -> 4x3 kernel -> a 4x5 map
    assert twin.forward(data=np.ones((1, 2, 9, 9)))["fc-conv"].shape == (1, 4, 4, 5)


def test_inner_product_chain_bias_free_and_transposed(tmp_path):
    net = build(tmp_path, CONV + """
      layer { name: "fc1" type: "InnerProduct" bottom: "conv" top: "fc1"
              inner_product_param { num_output: 5 bias_term: false } }
      layer { name: "relu" type: "ReLU" bottom: "fc1" top: "fc1" }
      layer { name: "fc2" type: "InnerProduct" bottom: "fc1" top: "fc2"
              inner_product_param { num_output: 3 transpose: true } }""")
    result, twin = converted_twin(net, tmp_path)
    fc1, fc2 = result.layers
    assert fc1.kernel == (4, 3) and len(twin.params["fc1-conv"]) == 1
    assert fc2.kernel == (1, 1) and fc2.copied and fc2.old_shape == (5, 3)
    assert fc2.new_shape == (3, 5, 1, 1)
    assert_same_at_declared_size(net, twin, "fc2")


def test_suffix_none_keeps_names(tmp_path):
    net = build(tmp_path, CONV + 'layer { name: "fc" type: "InnerProduct" bottom: "conv" '
                'top: "fc" inner_product_param { num_output: 4 } }')
    result, twin = converted_twin(net, tmp_path, suffix=None)
    assert result.layers[0].new_name == "fc" and twin.outputs == ["fc"]
    assert [layer.type for layer in twin.layers] == ["Input", "Convolution", "Convolution"]


def test_global_pooling_becomes_a_fixed_window(tmp_path):
    net = build(tmp_path, CONV + 'layer { name: "gap" type: "Pooling" bottom: "conv" top: "gap" '
                'pooling_param { pool: AVE global_pooling: true } }')
    result, twin = converted_twin(net, tmp_path)
    assert [(layer.old_name, layer.kernel) for layer in result.layers] == [("gap", (4, 3))]
    assert "global pooling" in str(result)
    assert_same_at_declared_size(net, twin, "gap")
    assert twin.forward(data=np.ones((1, 2, 8, 8)))["gap"].shape == (1, 3, 3, 4)


def test_nothing_to_convert_leaves_the_net_alone(tmp_path):
    net = build(tmp_path, CONV)
    result, twin = converted_twin(net, tmp_path)
    assert result.layers == [] and result.removed == []
    assert "nothing to convert" in str(result)
    assert [layer.type for layer in twin.layers] == ["Input", "Convolution"]


def test_several_inputs(tmp_path):
    path = tmp_path / "two.prototxt"
    path.write_text("""
      layer { name: "data" type: "Input" top: "data" top: "extra"
              input_param { shape { dim: 1 dim: 2 dim: 6 dim: 5 } shape { dim: 1 dim: 3 dim: 4 dim: 3 } } }
      """ + CONV + """
      layer { name: "sum" type: "Eltwise" bottom: "conv" bottom: "extra" top: "sum" }
      layer { name: "fc" type: "InnerProduct" bottom: "sum" top: "fc"
              inner_product_param { num_output: 2 } }""")
    net = surgery.Net(path)
    randomize(net)
    result = surgery.fully_convolutionalize(net)
    assert result.layers[0].kernel == (4, 3)
    out = net.forward(data=np.ones((1, 2, 8, 7)), extra=np.ones((1, 3, 6, 5)))
    assert out["fc-conv"].shape == (1, 2, 3, 3)


def test_input_shape_sets_where_kernels_are_measured(tmp_path):
    net = build(tmp_path, CONV + 'layer { name: "gap" type: "Pooling" bottom: "conv" top: "gap" '
                'pooling_param { pool: MAX global_pooling: true } }')
    result = surgery.fully_convolutionalize(net, input_shape=(1, 2, 10, 10))
    assert result.layers[0].kernel == (8, 8)


# --- Refusals: typed, named, and nothing changed or written -------------------

def test_axis_two_is_refused(tmp_path):
    net = build(tmp_path, CONV + 'layer { name: "fc" type: "InnerProduct" bottom: "conv" '
                'top: "fc" inner_product_param { num_output: 4 axis: 2 } }')
    with pytest.raises(surgery.SurgeryError, match="'fc'.*axis 2"):
        surgery.fully_convolutionalize(net)
    assert [layer.type for layer in net.layers][-1] == "InnerProduct"


def test_inner_product_without_spatial_bottom_is_refused_and_nothing_written(tmp_path):
    path = tmp_path / "mlp.prototxt"
    path.write_text(with_input('layer { name: "fc" type: "InnerProduct" bottom: "data" '
                               'top: "fc" inner_product_param { num_output: 4 } }', (1, 8)))
    with pytest.raises(surgery.SurgeryError, match="'fc'.*no spatial extent"):
        surgery.fully_convolutionalize(path, None, tmp_path / "out.prototxt")
    assert not (tmp_path / "out.prototxt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.prototxt"]


def test_weights_missing_for_a_converted_layer(tmp_path):
    net = build(tmp_path, CONV + 'layer { name: "fc" type: "InnerProduct" bottom: "conv" '
                'top: "fc" inner_product_param { num_output: 4 } }')
    net.save(tmp_path / "a.prototxt")
    partial = build(tmp_path, CONV)  # same conv layer, no fc
    partial.save(weights=tmp_path / "partial.caffemodel")
    with pytest.raises(surgery.SurgeryError, match="'fc' got no weights.*partial.caffemodel"):
        surgery.fully_convolutionalize(tmp_path / "a.prototxt", tmp_path / "partial.caffemodel",
                                       tmp_path / "o.prototxt", tmp_path / "o.caffemodel")
    assert not (tmp_path / "o.prototxt").exists() and not (tmp_path / "o.caffemodel").exists()


def test_element_count_mismatch(tmp_path):
    net = build(tmp_path, CONV + 'layer { name: "fc" type: "InnerProduct" bottom: "conv" '
                'top: "fc" inner_product_param { num_output: 4 } }')
    net.save(tmp_path / "a.prototxt", tmp_path / "a.caffemodel")
    other = build(tmp_path, CONV + 'layer { name: "fc" type: "InnerProduct" bottom: "conv" '
                  'top: "fc" inner_product_param { num_output: 5 } }')
    other.save(weights=tmp_path / "b.caffemodel")
    with pytest.raises(surgery.ShapeError, match="'fc'.*5 x 36.*4 x 36"):
        surgery.fully_convolutionalize(tmp_path / "a.prototxt", tmp_path / "b.caffemodel")


def test_inputs_are_never_modified_and_not_overwritten(tmp_path):
    net = build(tmp_path, CONV + 'layer { name: "fc" type: "InnerProduct" bottom: "conv" '
                'top: "fc" inner_product_param { num_output: 4 } }')
    net.save(tmp_path / "a.prototxt", tmp_path / "a.caffemodel")
    before = {p: p.read_bytes() for p in (tmp_path / "a.prototxt", tmp_path / "a.caffemodel")}
    surgery.fully_convolutionalize(tmp_path / "a.prototxt", tmp_path / "a.caffemodel",
                                   tmp_path / "b.prototxt", tmp_path / "b.caffemodel")
    with pytest.raises(surgery.SurgeryError, match="refusing to overwrite"):
        surgery.fully_convolutionalize(tmp_path / "a.prototxt", tmp_path / "a.caffemodel",
                                       tmp_path / "a.prototxt")
    assert {p: p.read_bytes() for p in before} == before
    assert not [p for p in tmp_path.iterdir() if ".tmp." in p.name]
