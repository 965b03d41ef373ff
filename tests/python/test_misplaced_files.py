"""Files given in the wrong place, or written for another Caffe fork, are
refused with a message that names what they are: swapped arguments, a
custom layer of another fork, a caffemodel given as the mean."""

import pytest

import surgery
from conftest import fixture
from surgery.preprocess import load_mean

# ShuffleNet's deploy prototxts (a fork's layer type and its parameter).
SHUFFLE_NET = """name: "shufflenet"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 24 dim: 8 dim: 8 } } }
layer {
  name: "shuffle1"
  type: "ShuffleChannel"
  bottom: "data"
  top: "shuffle1"
  shuffle_channel_param {
    group: 3
  }
}
"""


def test_caffemodel_given_as_the_prototxt_says_swapped_arguments(lenet):
    with pytest.raises(surgery.ParseError, match="swapped arguments\\? the prototxt") as error:
        surgery.Net(lenet[1], lenet[0])
    assert str(lenet[1]) in str(error.value)


def test_swapped_arguments_on_the_command_line(lenet, capsys):
    from surgery import cli
    image = fixture("caffe_example_images", "cat.jpg")
    assert cli.main(["dense", str(lenet[1]), str(lenet[0]), str(image)]) == 2
    err = capsys.readouterr().err
    assert "it is binary, not text (a caffemodel?): swapped arguments?" in err
    assert "Invalid control characters" not in err


def test_caffemodel_too_large_for_a_prototxt_says_swapped_arguments(tmp_path):
    big = tmp_path / "vgg16.caffemodel"
    with open(big, "wb") as file:  # sparse: 65 MiB of which only the head is written
        file.write(b"\n\x05VGG16\xa2\x06\x10\n\x05conv1\x12\x0bConvolution")
        file.truncate(65 << 20)
    with pytest.raises(surgery.FileError, match="larger than 64 MiB.*swapped arguments\\?"):
        surgery.Net(big)


def test_prototxt_given_as_the_weights_says_swapped_arguments(lenet):
    with pytest.raises(surgery.ParseError, match="is text, not binary weights.*swapped "
                                                 "arguments\\? the prototxt") as error:
        surgery.Net(lenet[0], lenet[0])
    assert str(lenet[0]) in str(error.value)


def test_a_fork_layer_is_named_with_its_type(tmp_path):
    path = tmp_path / "shufflenet.prototxt"
    path.write_text(SHUFFLE_NET)
    with pytest.raises(surgery.ParseError) as error:
        surgery.Net(path)
    message = str(error.value)
    assert "line 9" in message and "shuffle_channel_param" in message
    assert "in layer 'shuffle1' of type 'ShuffleChannel'" in message
    assert "custom layer of another Caffe fork" in message


def test_a_fork_layer_that_parses_is_refused_as_a_fork_layer(tmp_path):
    # MobileNet's depthwise layer reads the standard convolution_param.
    path = tmp_path / "mobilenet.prototxt"
    path.write_text(SHUFFLE_NET.replace('type: "ShuffleChannel"', 'type: "ConvolutionDepthwise"')
                    .replace("shuffle_channel_param {\n    group: 3",
                             "convolution_param {\n    num_output: 24 kernel_size: 3 group: 24"))
    with pytest.raises(surgery.NetDefinitionError) as error:
        surgery.Net(path)
    message = str(error.value)
    assert "layer 'shuffle1' (ConvolutionDepthwise): unknown layer type" in message
    assert "custom layer of another Caffe fork" in message


def test_a_fork_parameter_of_a_standard_layer_names_the_layer(tmp_path):
    path = tmp_path / "depthwise.prototxt"
    path.write_text(SHUFFLE_NET.replace("ShuffleChannel", "Convolution")
                    .replace("shuffle_channel_param", "depthwise_param"))
    with pytest.raises(surgery.ParseError) as error:
        surgery.Net(path)
    message = str(error.value)
    assert "in layer 'shuffle1' of type 'Convolution'" in message
    assert "a parameter this Caffe's Convolution does not have" in message
    assert "custom layer" not in message


def test_a_caffemodel_named_as_a_binaryproto_mean_is_not_a_mean_file(tmp_path, lenet):
    fake = tmp_path / "mean.binaryproto"
    fake.write_bytes(lenet[1].read_bytes())
    with pytest.raises(surgery.ParseError, match="not a mean file \\(a caffemodel\\?\\); give "
                                                 "a .npy array or Caffe's .binaryproto") as error:
        load_mean(fake)
    assert str(fake) in str(error.value) and "allow_pickle" not in str(error.value)
