"""The 2014 pycaffe API that the seed notebook and its offspring call on a
Net: ``set_phase_test/train``, ``set_mean``, ``set_channel_swap``,
``set_raw_scale``, ``set_input_scale``, ``preprocess`` and ``deprocess``.

Caffe's pycaffe of 2014 kept these settings on the Net, per input; later
releases moved them to ``caffe.io.Transformer``. Here each input's settings
are one ``surgery.Preprocess``, so the arithmetic is the one the rest of
the package uses (and the Transformer's: same order, same mean resize).
Unlike 2014's class-wide dicts, the settings belong to one net.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict

import numpy as np

from .errors import SurgeryError
from .preprocess import Preprocess, as_mean, load_mean

# Caffe's Phase values (caffe.proto), as pycaffe's Layer.phase gives them.
TRAIN, TEST = 0, 1


def _steps(net) -> Dict[str, Preprocess]:
    """This net's settings, input by input (made on first use)."""
    return net.__dict__.setdefault("_preprocess_2014", {})


def _checked_input(net, input_: str) -> str:
    if input_ not in net.inputs:
        raise SurgeryError(f"{input_!r} is not an input of the net: {list(net.inputs)}")
    return input_


def _update(net, input_: str, **settings) -> None:
    """Changes some of `input_`'s settings; Preprocess checks the values."""
    steps = _steps(net)
    steps[input_] = dataclasses.replace(steps.get(input_, Preprocess()), **settings)


def _set_phase(net, phase: int, name: str) -> None:
    """Caffe fixes a net's phase when the net is built (Dropout, BatchNorm and
    include rules read it then); in 2014 it was a global switch read at
    each forward. A net built in the phase asked for is left as it is."""
    if any(layer.phase != phase for layer in net.layers):
        raise SurgeryError(f"this net was built for another phase than {name}, and a built "
                           f"net keeps its phase: load it again as caffe.Net(prototxt, "
                           f"weights, caffe.{name})")


def set_phase_test(self) -> None:
    """Checks that the net runs in the TEST phase (the 2014 two-argument
    ``Net(prototxt, weights)`` builds it so)."""
    _set_phase(self, TEST, "TEST")


def set_phase_train(self) -> None:
    """Checks that the net runs in the TRAIN phase."""
    _set_phase(self, TRAIN, "TRAIN")


def set_mean(self, input_: str, mean, mode: str = "elementwise") -> None:
    """The mean to subtract from `input_`: a K x H x W image (or a .npy or
    .binaryproto path), resized to the input as pycaffe did, or with
    ``mode='channel'`` its per-channel average."""
    _checked_input(self, input_)
    shape = tuple(self.blobs[input_].shape[1:])
    if mode not in ("elementwise", "channel"):
        raise ValueError(f"mode must be 'elementwise' or 'channel', not {mode!r}")
    values = load_mean(mean) if isinstance(mean, (str, os.PathLike)) else np.asarray(mean)
    fitted = as_mean(values, shape)  # refused now, as in 2014, if it cannot fit the input
    if mode == "channel":
        values = values.reshape(shape[0], -1).mean(axis=1)
    elif values.ndim > 1:
        values = fitted  # resized once, here, as 2014 did
    _update(self, input_, mean=values)


def set_channel_swap(self, input_: str, order) -> None:
    """The order to take the channels in, e.g. (2, 1, 0) for RGB to BGR."""
    _update(self, _checked_input(self, input_), channel_swap=order)


def set_raw_scale(self, input_: str, scale: float) -> None:
    """Multiplies the [0, 1] image before the mean is subtracted (255 for CaffeNet)."""
    _update(self, _checked_input(self, input_), raw_scale=scale)


def set_input_scale(self, input_: str, scale: float) -> None:
    """Multiplies the image after the mean is subtracted."""
    _update(self, _checked_input(self, input_), input_scale=scale)


def preprocess(self, input_name: str, input_) -> np.ndarray:
    """An H' x W' x K image as `input_name`'s K x H x W input: resized to the
    input blob, channels swapped, raw scale, mean, input scale. Values are
    taken as they are (as 2014's ``astype(np.float32)``), not scaled by type."""
    steps = _steps(self).get(_checked_input(self, input_name), Preprocess())
    _, channels, height, width = self.blobs[input_name].shape
    image = np.asarray(input_, dtype=np.float32)
    if image.shape[:2] != (height, width):
        steps = dataclasses.replace(steps, size=(height, width))
    return steps(image, channels)[1]


def deprocess(self, input_name: str, input_) -> np.ndarray:
    """`input_name`'s K x H x W (or 1 x K x H x W) input back as an H x W x K
    image: preprocess undone, but for the resize."""
    return _steps(self).get(_checked_input(self, input_name), Preprocess()).invert(input_)


def attach(net_class) -> None:
    """Gives pycaffe's Net class these methods, as pycaffe attaches its own,
    so that nets a solver makes have them too."""
    for method in (set_phase_test, set_phase_train, set_mean, set_channel_swap,
                   set_raw_scale, set_input_scale, preprocess, deprocess):
        setattr(net_class, method.__name__, method)
