"""The names upstream pycaffe's compiled `_caffe` module gives pycaffe.py, from
surgery._core: nets and solvers built by this package's loader."""
from .._core import pycaffe as _compiled

Net = _compiled.Net
Blob = _compiled.Blob
BlobVec = _compiled.BlobVec
Layer = _compiled.Layer
LayerParameter = _compiled.LayerParameter
Solver = _compiled.Solver
SGDSolver = _compiled.SGDSolver
NesterovSolver = _compiled.NesterovSolver
AdaGradSolver = _compiled.AdaGradSolver
RMSPropSolver = _compiled.RMSPropSolver
AdaDeltaSolver = _compiled.AdaDeltaSolver
AdamSolver = _compiled.AdamSolver
get_solver = _compiled.get_solver
layer_type_list = _compiled.layer_type_list
set_mode_cpu = _compiled.set_mode_cpu
set_mode_gpu = _compiled.set_mode_gpu
set_device = _compiled.set_device
set_random_seed = _compiled.set_random_seed
set_load_policy = _compiled.set_load_policy
load_policy = _compiled.load_policy

# The Caffe this face stands for: BVLC master (1.0.0), in the brocolli-caffe fork.
__version__ = "1.0.0"
