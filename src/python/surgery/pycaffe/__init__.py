"""pycaffe's interface over caffe-surgery's core: ``import surgery.pycaffe as caffe``.

pycaffe code runs unchanged: ``caffe.Net(prototxt, caffe.TEST, weights=...)``,
``net.blobs['data'].data[...] = x``, ``caffe.io.Transformer``, ``caffe.SGDSolver``.
pycaffe's own modules (pycaffe, io, net_spec, coord_map, draw, classifier,
detector) are upstream's, installed at build time from the sdist libcaffe is
built from (third_party/pycaffe); the compiled half (``_caffe``) is this
package's: every prototxt, caffemodel and solver goes through the same loader
as ``surgery.Net`` (layer allow-list, parameter checks, memory limit, bounded
readers; ``restore`` too). Python layers, which import and run the module a
definition names, and files read with HDF5's own reader (``load_hdf5``, HDF5
data layers) are refused unless the caller opts in, process-wide::

    caffe.set_load_policy(python_layers=True, io_layers=False)
"""
try:
    from .pycaffe import (Net, SGDSolver, NesterovSolver, AdaGradSolver, RMSPropSolver,
                          AdaDeltaSolver, AdamSolver)
except ModuleNotFoundError as missing:  # upstream's modules import protobuf and six
    if missing.name not in ("google", "google.protobuf", "six", "surgery.pycaffe.pycaffe"):
        raise
    raise ImportError(
        f"surgery.pycaffe cannot import {missing.name}: install the pycaffe extra "
        "(pip install 'caffe-surgery[pycaffe]'); pycaffe's modules come with a build of this "
        "package from source (third_party/pycaffe)") from missing
from ._caffe import (set_mode_cpu, set_mode_gpu, set_device, Layer, get_solver, layer_type_list,
                     set_random_seed, set_load_policy, load_policy, __version__)
from .proto.caffe_pb2 import TRAIN, TEST
from .classifier import Classifier
from .detector import Detector
from . import io
from .net_spec import layers, params, NetSpec, to_proto
from .alias import register_as_caffe
from .. import preprocess, pycaffe_2014, pycaffe_sharing

# Upstream's load_image passes skimage an argument it no longer takes
# (as_grey: a TypeError) and decodes any file whole. surgery's gives the
# same numbers (tests/python/test_images.py) through the bounded reader:
# regular files only, the size checked against the memory limit first.
io.load_image = preprocess.load_image

# Like pycaffe.py's own methods, on the class, so that a solver's nets have them too.
pycaffe_2014.attach(Net)
pycaffe_sharing.attach(Net)

# Multi-GPU training through NCCL is not built.
has_nccl = False

__all__ = ["Net", "SGDSolver", "NesterovSolver", "AdaGradSolver", "RMSPropSolver",
           "AdaDeltaSolver", "AdamSolver", "set_mode_cpu", "set_mode_gpu", "set_device", "Layer",
           "get_solver", "layer_type_list", "set_random_seed", "set_load_policy", "load_policy",
           "__version__", "TRAIN", "TEST", "Classifier", "Detector", "io", "layers", "params",
           "NetSpec", "to_proto", "register_as_caffe", "has_nccl"]
