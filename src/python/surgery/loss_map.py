"""The loss map: a fully convolutional net trained on every output cell at
once, each cell against its window's label (window_labels), with Caffe's
SoftmaxWithLoss over the map, the ignored cells left out and the loss
averaged over the cells that count (VALID normalisation).

On a net without padding, that loss and its weight gradients are exactly
the mean of the original classifier's losses and gradients on the cells'
windows (tests/python/test_loss_map.py checks it): dense training is
window training, computed once per image instead of once per window.
"""

from __future__ import annotations

import os
import tempfile
from typing import Dict, Sequence, Tuple

import numpy as np

from . import _core
from .atomic_files import read_text
from .net import Net
from .window_labels import IGNORE

# The train net is built from the deploy net's definition: a prototxt of
# tens of KiB, so 64 MiB is as generous as the core's own bound.
DEFINITION_BYTES = 64 * 2**20


def definition_text(net: Net) -> str:
    """`net`'s definition as it stands (after surgery), as prototxt text."""
    with tempfile.TemporaryDirectory(prefix="surgery-") as folder:
        path = os.path.join(folder, "deploy.prototxt")
        net.save(path)
        return read_text(path, "definition", DEFINITION_BYTES)


def score_layer(deploy: str) -> Tuple[str, str, int]:
    """(layer, blob, classes) of the layer making `deploy`'s class scores."""
    return _core.score_layer(deploy)


def with_new_head(deploy: str, outputs: int, name: str) -> str:
    """`deploy` with its score layer giving `outputs` classes, named `name`."""
    return _core.with_new_head(deploy, outputs, name)


def train_definition(deploy: str, data_shape: Sequence[int], map_shape: Sequence[int],
                     frozen: Sequence[str] = ()) -> str:
    """The train net of `deploy` for batches of `data_shape` (N, C, H, W)
    whose scores are `map_shape` (rows, columns; empty for a classifier):
    inputs ``data`` and ``label`` (N x rows x columns, ``IGNORE`` for cells
    that count for nothing), output ``loss``; `frozen` layers keep their
    weights (lr_mult 0)."""
    return _core.loss_map_net(deploy, list(data_shape), [data_shape[0], *map_shape], IGNORE,
                              list(frozen))


def trainer(solver: str, train_net: str, weights: Dict[str, Sequence[np.ndarray]]
            ) -> _core.Trainer:
    """A solver over `train_net` whose layers start from `weights` (layer
    name -> blobs, as ``Net.params``); layers not in it keep their fillers'
    values."""
    out = _core.Trainer(solver, train_net)
    copy_weights(out, weights)
    return out


def copy_weights(to: _core.Trainer, weights: Dict[str, Sequence[np.ndarray]]) -> None:
    """Each layer of `to` that `weights` names takes those blobs (their
    values, reshaped: an InnerProduct's matrix fits the Convolution that
    surgery made of it)."""
    for layer, blobs in to.params():
        if layer in weights:
            for k, blob in enumerate(blobs):
                to.set_param(layer, k, np.asarray(weights[layer][k], np.float32)
                             .reshape(blob.shape))
