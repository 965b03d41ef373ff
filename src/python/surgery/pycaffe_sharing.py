"""One C++ net, two faces: ``surgery.pycaffe.Net.surgery_net()`` gives the
surgery.Net over a pycaffe net's memory, so that fully_convolutionalize,
dense_forward and the rest take pycaffe nets; ``surgery.pycaffe.Net(net)``
(the compiled half) gives the pycaffe net over a surgery.Net's."""

from __future__ import annotations

from .errors import SurgeryError
from .net import Net

# What upstream's pycaffe.py keeps on a net once read (its names, lists and
# ordered dicts of layers and blobs). Surgery renames blobs and replaces
# layers, so these are dropped whenever a surgery.Net is handed out.
STRUCTURE_CACHES = ("_blobs_dict", "_blob_loss_weights_dict", "_layer_dict", "_params_dict",
                    "_input_list", "_output_list", "_top_names", "_bottom_names")


def surgery_net(self) -> Net:
    """This net as a surgery.Net: the same C++ net, memory and lock. This
    net's lists of layers and blobs are read afresh on their next use, so
    that what surgery changes through the surgery.Net shows here too."""
    core = self._surgery_core
    if core is None:
        raise SurgeryError("this net was built by a solver, not by surgery's loader: load it "
                           "with surgery.pycaffe.Net(prototxt, weights, phase) to run surgery on it")
    for name in STRUCTURE_CACHES:
        self.__dict__.pop(name, None)
    return Net.sharing(core)


def attach(net_class) -> None:
    """Gives pycaffe's Net class ``surgery_net``."""
    net_class.surgery_net = surgery_net
