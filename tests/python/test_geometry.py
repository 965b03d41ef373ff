"""Geometry of any net: the window a cell stands for (recorded, declared or
exact fit), the smallest input each side accepts, checked against Caffe
itself (reshape and forward) and against a one-pixel probe."""

import numpy as np
import pytest

import surgery
from conftest import fixture
from surgery import dense_forward
from surgery.testing import randomize, with_input

# Needs only the installed package and the fixtures: runs against the wheel too.
pytestmark = pytest.mark.wheel


def caffe_cells(net, h, w):
    """What Caffe itself gives at an h x w input: the output's H' x W', or
    None where it refuses the size or some blob on the way is empty (Caffe
    goes on past an empty blob, computing from nothing)."""
    name = net.inputs[0]
    channels = net.declared_input_shapes()[name][1]
    try:
        net.reshape(**{name: (1, channels, h, w)})
    except surgery.SurgeryError:
        return None
    if any(min(blob.shape[2:], default=1) < 1 for blob in net.blobs.values()):
        return None
    return tuple(net.blobs[net.outputs[0]].shape[2:])


@pytest.fixture(scope="module")
def full_conv_caffenet():
    """The seed's own hand-made fully convolutional CaffeNet (input 451)."""
    return surgery.Net(fixture("bvlc_caffenet_full_conv", "bvlc_caffenet_full_conv.prototxt"))


def test_seed_full_conv_caffenet_cells_are_227_windows_at_stride_32(full_conv_caffenet):
    geo = surgery.geometry(full_conv_caffenet)
    assert geo.window == (227, 227) and geo.stride == (32, 32)
    assert geo.window_rule == "exact fit"
    dense = dense_forward(full_conv_caffenet, np.zeros((451, 451, 3), np.float32))
    assert dense.shape == (8, 8)
    assert tuple(dense.boxes[0, 0]) == (0, 0, 227, 227)
    assert tuple(dense.boxes[7, 7]) == (224, 224, 451, 451)


def test_seed_full_conv_caffenet_smallest_input_is_caffes(full_conv_caffenet):
    """The smallest input is Caffe's own: it gives one cell there and
    refuses one pixel less (checked per side)."""
    geo = surgery.geometry(full_conv_caffenet)
    h, w = geo.min_input
    assert caffe_cells(full_conv_caffenet, h, w) == (1, 1)
    assert caffe_cells(full_conv_caffenet, h - 1, w) is None
    assert caffe_cells(full_conv_caffenet, h, w - 1) is None
    # Pooling rounds up, so the smallest input is below the 227 window.
    assert h < 227


def test_seed_full_conv_caffenet_takes_227_and_300_and_refuses_below_its_smallest(
        full_conv_caffenet):
    assert dense_forward(full_conv_caffenet, np.zeros((227, 227, 3), np.float32)).shape == (1, 1)
    # 300: conv1 73, pool1 36, pool2 18, pool5 9, fc6-conv 4 (pooling rounds up).
    assert dense_forward(full_conv_caffenet, np.zeros((300, 300, 3), np.float32)).shape == (4, 4)
    h, w = surgery.geometry(full_conv_caffenet).min_input
    assert dense_forward(full_conv_caffenet, np.zeros((h, w, 3), np.float32)).shape == (1, 1)
    with pytest.raises(surgery.ShapeError, match=f"at least {h}x{w}"):
        dense_forward(full_conv_caffenet, np.zeros((h - 1, 300, 3), np.float32))
    with pytest.raises(surgery.ShapeError, match=f"at least {h}x{w}"):
        dense_forward(full_conv_caffenet, np.zeros((300, w - 1, 3), np.float32))


def test_window_override(full_conv_caffenet):
    geo = surgery.geometry(full_conv_caffenet, window=(231, 229))
    assert geo.window == (231, 229) and geo.window_rule == "given"
    dense = dense_forward(full_conv_caffenet, np.zeros((227, 227, 3), np.float32), window=231)
    assert tuple(dense.boxes[0, 0]) == (0, 0, 231, 231)
    with pytest.raises(surgery.ShapeError, match="window"):
        surgery.geometry(full_conv_caffenet, window=(0, 3))


def vgg16_fcn(side):
    """VGG-16 written fully convolutional by hand (fc6 as a 7x7 convolution)."""
    layers, bottom, n = [], "data", 0
    for block, convs in enumerate([2, 2, 3, 3, 3], 1):
        for k in range(convs):
            n += 1
            layers.append(f'layer {{ name: "conv{block}_{k}" type: "Convolution" bottom: "{bottom}" '
                          f'top: "conv{block}_{k}" convolution_param {{ num_output: 1 '
                          f'kernel_size: 3 pad: 1 }} }}')
            bottom = f"conv{block}_{k}"
        layers.append(f'layer {{ name: "pool{block}" type: "Pooling" bottom: "{bottom}" '
                      f'top: "pool{block}" pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}')
        bottom = f"pool{block}"
    layers.append('layer { name: "fc6" type: "Convolution" bottom: "pool5" top: "fc6" '
                  'convolution_param { num_output: 1 kernel_size: 7 } }')
    layers.append('layer { name: "fc7" type: "Convolution" bottom: "fc6" top: "fc7" '
                  'convolution_param { num_output: 1 kernel_size: 1 } }')
    return with_input("\n".join(layers), (1, 1, side, side))


LENET_FCN = """
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 2 kernel_size: 5 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 2 kernel_size: 5 } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "Convolution" bottom: "pool2" top: "ip1"
        convolution_param { num_output: 3 kernel_size: 4 } }
layer { name: "ip2" type: "Convolution" bottom: "ip1" top: "ip2"
        convolution_param { num_output: 2 kernel_size: 1 } }
"""


@pytest.mark.parametrize("name, text, window, stride", [
    ("vgg16", vgg16_fcn(320), 224, 32),
    ("lenet", with_input(LENET_FCN, (1, 1, 64, 64)), 28, 4),
])
def test_hand_made_fully_convolutional_nets(tmp_path, name, text, window, stride):
    path = tmp_path / f"{name}.prototxt"
    path.write_text(text)
    net = surgery.Net(path)
    geo = surgery.geometry(net)
    assert geo.window == (window, window) and geo.stride == (stride, stride)
    # At the window Caffe gives exactly one cell; one window plus one stride, two.
    assert caffe_cells(net, window, window) == (1, 1)
    assert caffe_cells(net, window + stride, window + stride) == (2, 2)
    h, w = geo.min_input
    assert caffe_cells(net, h, w) == (1, 1) and caffe_cells(net, h - 1, w) is None


def test_declared_input_that_gives_one_cell_is_the_window(tmp_path, lenet):
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    geo = surgery.geometry(net)
    assert geo.window == (28, 28) and geo.window_rule == "recorded"
    path = tmp_path / "declared.prototxt"
    path.write_text(with_input(LENET_FCN, (1, 1, 28, 28)))
    assert surgery.geometry(surgery.Net(path)).window_rule == "declared"


def test_converted_prototxt_records_the_window_for_a_reload(tmp_path):
    """ResNet-50 relies on Caffe rounding pool1 up, so the exact-fit rule
    would not find 224; the converted prototxt records it, and a reload
    gives the same geometry even after its declared input is enlarged."""
    deploy = fixture("resnet50_deploy", "ResNet-50-deploy.prototxt")
    out = tmp_path / "resnet_fc.prototxt"
    result = surgery.fully_convolutionalize(deploy, None, out)
    assert result.geometry.window == (224, 224)
    text = out.read_text()
    assert "# caffe-surgery window: 224 224\n" in text
    bigger = text.replace("dim: 224", "dim: 448")
    (tmp_path / "bigger.prototxt").write_text(bigger)
    reloaded = surgery.geometry(surgery.Net(tmp_path / "bigger.prototxt"))
    assert reloaded.window == (224, 224) and reloaded.window_rule == "recorded"
    # Without the record the rules cannot know: the exact fit is another size.
    (tmp_path / "bare.prototxt").write_text(bigger.replace("# caffe-surgery window: 224 224\n", ""))
    bare = surgery.geometry(surgery.Net(tmp_path / "bare.prototxt"))
    assert bare.window_rule == "exact fit" and bare.window != (224, 224)
    # ... and the report says that the rule cannot know, and what to do.
    guessed = surgery.fully_convolutionalize(tmp_path / "bare.prototxt").warnings
    assert any("cannot be known" in w and "window=(H, W)" in w for w in guessed), guessed
    assert not any("cannot be known" in w for w in result.warnings)


def test_a_malformed_window_record_is_a_parse_error(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text("# caffe-surgery window: 227 -3\n" + with_input(LENET_FCN, (1, 1, 28, 28)))
    with pytest.raises(surgery.ParseError, match="line 1"):
        surgery.Net(path)


def test_each_side_is_checked_on_its_own(tmp_path):
    """An 8 x 20 window: a 30 x 10 image is too narrow although 30 >= 20."""
    path = tmp_path / "wide.prototxt"
    path.write_text(with_input("""
      layer { name: "c" type: "Convolution" bottom: "data" top: "c"
              convolution_param { num_output: 2 kernel_h: 8 kernel_w: 20 } }""", (1, 1, 8, 20)))
    net = surgery.Net(path)
    assert surgery.geometry(net).min_input == (8, 20)
    with pytest.raises(surgery.ShapeError, match="at least 8x20"):
        surgery.dense_forward(net, np.zeros((30, 10), np.float32))
    assert surgery.dense_forward(net, np.zeros((8, 25), np.float32)).shape == (1, 6)


PROBE_NETS = {
    # Rounding happens: at 23 pixels (in - k) / stride is not whole.
    "ceil-max-pooling-dilation": """
      layer { name: "c1" type: "Convolution" bottom: "data" top: "c1"
              convolution_param { num_output: 2 kernel_size: 3 dilation: 2 pad: 1 } }
      layer { name: "p1" type: "Pooling" bottom: "c1" top: "p1"
              pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
      layer { name: "c2" type: "Convolution" bottom: "p1" top: "c2"
              convolution_param { num_output: 2 kernel_size: 3 stride: 2 pad: 2 } }
      layer { name: "p2" type: "Pooling" bottom: "c2" top: "p2"
              pooling_param { pool: AVE kernel_size: 2 stride: 2 ceil_mode: true } }""",
    "floor-pooling": """
      layer { name: "c1" type: "Convolution" bottom: "data" top: "c1"
              convolution_param { num_output: 2 kernel_size: 2 stride: 1 } }
      layer { name: "p1" type: "Pooling" bottom: "c1" top: "p1"
              pooling_param { pool: AVE kernel_size: 3 stride: 2 ceil_mode: false } }""",
}


@pytest.mark.parametrize("name", sorted(PROBE_NETS))
def test_probe_agrees_with_receptive_field_and_smallest_input(tmp_path, name):
    """One pixel at a time: the cells that change are those whose receptive
    field holds the pixel; Caffe's sizes agree with min_input and the window."""
    side = 23
    path = tmp_path / "probe.prototxt"
    path.write_text(with_input(PROBE_NETS[name], (1, 1, side, side)))
    net = surgery.Net(path)
    randomize(net, seed=3)
    geo = surgery.geometry(net)
    out = net.outputs[0]
    base = net.forward(data=np.zeros((1, 1, side, side)))[out][0]
    (oy, ox), (sy, sx), (hy, hx) = geo.receptive_offset, geo.stride, geo.receptive_field
    rows, cols = base.shape[1:]
    for y, x in [(0, 0), (side - 1, side - 1), (side // 2, 3), (5, side - 2)]:
        probe = np.zeros((1, 1, side, side), np.float32)
        probe[0, 0, y, x] = 1.0
        changed = np.abs(net.forward(data=probe)[out][0] - base).max(axis=0) > 1e-7
        expected = np.array([[oy + i * sy <= y < oy + i * sy + hy and
                              ox + j * sx <= x < ox + j * sx + hx
                              for j in range(cols)] for i in range(rows)])
        np.testing.assert_array_equal(changed, expected)
    h, w = geo.min_input
    assert caffe_cells(net, h, w) is not None and caffe_cells(net, h - 1, w - 1) is None
    assert caffe_cells(net, *geo.window) == (1, 1)
