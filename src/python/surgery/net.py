"""``surgery.Net``: a Caffe net whose blobs and params are numpy views."""

from __future__ import annotations

import os
from typing import (Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence,
                    Tuple, TypeVar, Union)

import numpy as np

from . import _core

# Paths as open() takes them; a str that is not UTF-8 (surrogate escapes,
# as os.fsdecode gives) reaches the file it names.
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
T = TypeVar("T")


class LayerInfo(NamedTuple):
    name: str
    type: str
    bottoms: List[str]
    tops: List[str]


class Views(Mapping[str, T]):
    """A read-only mapping by name whose values are made only when asked for.

    The names are read afresh on each use (surgery renames blobs); a view is
    made for the one item looked up, so looking at one blob neither
    allocates nor moves (in GPU mode: copies to the host) any other."""

    def __init__(self, names: Callable[[], List[str]], view: Callable[[str], T]) -> None:
        self._names = names
        self._view = view

    def __getitem__(self, name: str) -> T:
        if name not in self._names():
            raise KeyError(name)
        return self._view(name)

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return f"<views of {', '.join(self._names())}>"


class Net(_core.Net):
    """A Caffe net loaded from a text prototxt and, optionally, a caffemodel.

    Bad files raise ``surgery.SurgeryError`` subclasses; the interpreter
    survives. ``blobs`` and ``params`` view Caffe's memory without copying:
    writing into them changes the net. Threads may share a net: each call
    runs alone inside it, without holding up other Python threads.

    Only layer types that compute from their bottoms and parameters are
    constructed; layers that read or write the files their definition names
    (HDF5Data, HDF5Output, InfogainLoss's ``source``, DetectionOutput's
    ``save_output_param``, ...) raise ``NetDefinitionError`` unless
    ``trust_io_layers=True``.

    ``convolution`` says how Convolution layers compute on the CPU:
    ``"caffe"`` (the default: Caffe's im2col + GEMM, bit for bit what
    Caffe's own Net computes on this libcaffe), ``"winograd"`` (3x3, 5x5,
    6x6 and 7x7 kernels at stride 1, and strided kernels that are those as
    phases, such as 11x11 at stride 4, with 2.6 to 4 times fewer
    multiplications, each layer within 4e-5 of the exact sum relative to its
    output's scale, where Caffe's path stays within 3e-6; each such layer
    keeps its weights transformed, up to 5x their memory, and applies the
    in-place ReLU after it as it writes its output), ``"onednn"``
    (every 2-D convolution through oneDNN's kernels, each layer within 1e-5
    of Caffe's path relative to its output's scale; each keeps its weights
    packed, their size again) or ``"fastest"`` (each layer by whichever of
    the three measured fastest on it, at the first forward of each input
    shape, which costs about ten times that forward). ``engine_layers`` names the layers the last
    forward computed with the chosen algorithm rather than Caffe's path
    (``winograd_layers``: the same, for "winograd" only). Not saved: it is
    how the net runs, not what it is. ``layer_times`` gives the milliseconds each layer took in the
    last forward (Caffe's Split layers included; 0 for a ReLU that the
    Winograd layer before it applied).
    """

    def __init__(self, prototxt: PathLike, weights: Optional[PathLike] = None,
                 phase: str = "test", *, trust_io_layers: bool = False) -> None:
        super().__init__(os.fspath(prototxt),
                         None if weights is None else os.fspath(weights), phase,
                         trust_io_layers=trust_io_layers)
        # Only now is there a C++ net behind self: a failed load leaves an
        # instance that tracebacks, debuggers and pytest still show (repr),
        # and pybind11 would read its unconstructed memory.
        self._loaded = True

    @classmethod
    def sharing(cls, other: _core.Net) -> "Net":
        """A surgery.Net over the same C++ net as `other` (a surgery.Net, or
        the one behind a surgery.pycaffe.Net): the same memory, the same
        lock; a change made through either is seen through both."""
        net = cls.__new__(cls)
        _core.Net.__init__(net, other)
        net._loaded = True
        return net

    @property
    def layers(self) -> List[LayerInfo]:
        """The layers of the definition (for this phase), in order."""
        return [LayerInfo(*layer) for layer in self._layers()]

    @property
    def blobs(self) -> Mapping[str, np.ndarray]:
        """Every blob by name; looking one up gives a writable view of its memory."""
        return Views(self._blob_names, self._blob)

    @property
    def params(self) -> Mapping[str, List[np.ndarray]]:
        """Each layer's parameter blobs (weights, bias); looking one up gives writable views."""
        return Views(self._param_layers, self._params)

    def declared_input_shapes(self) -> Dict[str, Tuple[int, ...]]:
        """The inputs' shapes as the definition declares them (not as last reshaped)."""
        return {name: tuple(shape) for name, shape in _core.declared_input_shapes(self).items()}

    def reshape(self, **shapes: Sequence[int]) -> None:
        """Give inputs new shapes, e.g. ``net.reshape(data=(1, 3, 451, 451))``.

        Dimensions outside 1 .. 2**31 - 1 raise ShapeError."""
        self._reshape(shapes)

    def forward(self, **inputs: np.ndarray) -> Dict[str, np.ndarray]:
        """Run the net; inputs whose shape differs reshape the net first.

        Inputs are read, never modified; the returned outputs are copies.
        Ctrl-C stops the pass between two layers (KeyboardInterrupt); the
        net stays usable.
        """
        return self._forward({name: np.asarray(value, dtype=np.float32)
                              for name, value in inputs.items()})

    def forward_stepped(self, inputs: Dict[str, np.ndarray],
                        between_layers: Callable[[], object]) -> Dict[str, np.ndarray]:
        """``forward(**inputs)``, calling ``between_layers()`` before each
        layer of the running net (a progress bar's step); an exception it
        raises stops the pass there, as Ctrl-C does."""
        return self._forward({name: np.asarray(value, dtype=np.float32)
                              for name, value in inputs.items()}, between_layers)

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

    def __repr__(self) -> str:
        if not getattr(self, "_loaded", False):
            return "<surgery.Net that failed to load>"
        return f"<surgery.Net {self.name!r} from {self.source!r}, {len(self.layers)} layers>"


def as_net(net) -> Net:
    """`net` as a surgery.Net: itself, or for a net of pycaffe's face
    (surgery.pycaffe.Net) its ``surgery_net()``, which shares its memory.
    What surgery does to the net (convert, rarefy, reshape) is then done
    to the pycaffe net too."""
    if isinstance(net, Net):
        return net
    share = getattr(net, "surgery_net", None)
    if not callable(share):
        raise TypeError(f"expected a surgery.Net or a surgery.pycaffe.Net, not "
                        f"{type(net).__name__}")
    return share()
