"""``surgery.Net``: a Caffe net whose blobs and params are numpy views."""

from __future__ import annotations

import os
from typing import Dict, List, NamedTuple, Optional, Sequence, Union

import numpy as np

from . import _core

PathLike = Union[str, "os.PathLike[str]"]


class LayerInfo(NamedTuple):
    name: str
    type: str
    bottoms: List[str]
    tops: List[str]


class Net(_core.Net):
    """A Caffe net loaded from a text prototxt and, optionally, a caffemodel.

    Bad files raise ``surgery.SurgeryError`` subclasses; the interpreter
    survives. ``blobs`` and ``params`` view Caffe's memory without copying:
    writing into them changes the net.

    Only layer types that compute from their bottoms and parameters are
    constructed; layers that read or write the files their definition names
    (HDF5Data, HDF5Output, InfogainLoss's ``source``, DetectionOutput's
    ``save_output_param``, ...) raise ``NetDefinitionError`` unless
    ``trust_io_layers=True``.
    """

    def __init__(self, prototxt: PathLike, weights: Optional[PathLike] = None,
                 phase: str = "test", *, trust_io_layers: bool = False) -> None:
        super().__init__(os.fspath(prototxt),
                         None if weights is None else os.fspath(weights), phase,
                         trust_io_layers=trust_io_layers)

    @property
    def layers(self) -> List[LayerInfo]:
        """The layers of the definition (for this phase), in order."""
        return [LayerInfo(*layer) for layer in self._layers()]

    @property
    def blobs(self) -> Dict[str, np.ndarray]:
        """Every blob by name, as writable views of Caffe's memory."""
        return {name: self._blob(name) for name in self._blob_names()}

    @property
    def params(self) -> Dict[str, List[np.ndarray]]:
        """Each layer's parameter blobs (weights, bias), as writable views."""
        return {name: self._params(name) for name in self._param_layers()}

    def reshape(self, **shapes: Sequence[int]) -> None:
        """Give inputs new shapes, e.g. ``net.reshape(data=(1, 3, 451, 451))``."""
        self._reshape({name: [int(d) for d in shape] for name, shape in shapes.items()})

    def forward(self, **inputs: np.ndarray) -> Dict[str, np.ndarray]:
        """Run the net; inputs whose shape differs reshape the net first.

        Inputs are read, never modified; the returned outputs are copies.
        """
        return self._forward({name: np.asarray(value, dtype=np.float32)
                              for name, value in inputs.items()})

    def load_weights(self, weights: PathLike) -> None:
        """Copy trained weights in, matched by layer name; all checked first."""
        super().load_weights(os.fspath(weights))

    def save(self, prototxt: Optional[PathLike] = None,
             weights: Optional[PathLike] = None, *, overwrite: bool = False) -> None:
        """Write the definition (text) and/or weights (binary); each appears whole or not at all.

        Saved together, the prototxt records the weights' size and SHA-256 on
        its first line, so a pair mixed by an interrupted save refuses to load.
        Refused before anything is written: no file given, a weights name
        ending .prototxt/.pbtxt/.txt or a prototxt name ending .caffemodel
        (swapped arguments), one file for both, a target that is not a regular
        file or is read-only, and, unless ``overwrite=True``, the files this
        net was loaded from.
        """
        super().save("" if prototxt is None else os.fspath(prototxt),
                     "" if weights is None else os.fspath(weights), overwrite)

    def head(self, blob: str) -> str:
        """Where blob `blob`'s data is current: 'uninitialized', 'cpu', 'gpu' or
        'synced' (Caffe's SyncedMemory head). Asking moves nothing."""
        return _core.head(self, blob)

    def param_heads(self, layer: str) -> List[str]:
        """The same for each param blob of `layer`."""
        return _core.param_heads(self, layer)

    def fully_convolutionalize(self, *, suffix: Optional[str] = "-conv", input_shape=None):
        """Convert this net in place; see ``surgery.fully_convolutionalize``."""
        from .convert import convert_in_place
        return convert_in_place(self, suffix=suffix, input_shape=input_shape)

    def dense_forward(self, image, **kwargs):
        """Run densely over `image`; see ``surgery.dense_forward``."""
        from .dense import dense_forward
        return dense_forward(self, image, **kwargs)

    def __repr__(self) -> str:
        return f"<surgery.Net {self.name!r} from {self.source!r}, {len(self.layers)} layers>"
