"""Exceptions raised by surgery. Catch ``SurgeryError`` for all of them.

The compiled core raises these classes by name (src/cpp/bindings/errors.cpp),
so this module must not import the core.
"""


class SurgeryError(Exception):
    """Base of every error raised by surgery on purpose."""


class FileError(SurgeryError, OSError):
    """A file that cannot be opened, read or written."""


class ParseError(SurgeryError, ValueError):
    """Bytes that are not a valid prototxt or caffemodel."""


class NetDefinitionError(SurgeryError, ValueError):
    """A definition Caffe would reject: unknown layer type, missing bottom, refused layer."""


class ShapeError(SurgeryError, ValueError):
    """Shapes that do not fit: weights vs. layer, input vs. net, kernel vs. blob."""


class MemoryLimitError(ShapeError, MemoryError):
    """More memory than ``surgery.set_memory_limit`` allows; refused before it is taken."""


class ExportError(SurgeryError, ValueError):
    """A net that cannot be written in another format: a layer with no exact
    form there (ONNX has no Caffe-rounded dilated pooling, for one)."""


class CaffeError(SurgeryError, RuntimeError):
    """A failed CHECK inside Caffe that surgery's own validation did not foresee."""


class BatchError(SurgeryError, ValueError):
    """A batch run refused before any work: an output folder holding results of
    another model, settings or input; an input whose name would collide with
    a result; a Dask scheduler that cannot be used."""


class NumericWarning(RuntimeWarning):
    """Numbers that cannot be right, such as NaN or infinite scores."""


class PreprocessingWarning(UserWarning):
    """Settings that do not fit the image's range, such as a 0..255 mean on
    a 0..1 image: the net runs, on inputs it was never trained on."""
