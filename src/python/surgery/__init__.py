"""caffe-surgery: make Caffe classifiers fully convolutional and run them densely."""

from . import _core
from .errors import (CaffeError, FileError, NetDefinitionError, ParseError,
                     ShapeError, SurgeryError)
from .net import LayerInfo, Net

set_log_level = _core.set_log_level

__all__ = [
    "CaffeError", "FileError", "LayerInfo", "Net", "NetDefinitionError",
    "ParseError", "ShapeError", "SurgeryError", "set_log_level",
]
