"""caffe-surgery: make Caffe classifiers fully convolutional and run them densely."""

from . import _core
from .errors import (CaffeError, FileError, NetDefinitionError, ParseError,
                     ShapeError, SurgeryError)
from .net import LayerInfo, Net
from .dense import DenseMap, dense_forward
from . import preprocess
from .preprocess import load_image
from .report import load_labels
from .convert import (ConvertedLayer, Geometry, SurgeryResult, fully_convolutionalize,
                      geometry)

set_log_level = _core.set_log_level
set_memory_limit = _core.set_memory_limit
memory_limit = _core.memory_limit

__all__ = [
    "CaffeError", "ConvertedLayer", "DenseMap", "dense_forward", "load_image", "load_labels", "FileError", "Geometry", "LayerInfo", "Net",
    "NetDefinitionError", "ParseError", "ShapeError", "SurgeryError", "SurgeryResult",
    "fully_convolutionalize", "geometry", "memory_limit", "set_log_level", "set_memory_limit",
]
