"""Code written for pycaffe imports ``caffe``; this makes that name surgery.pycaffe."""
import importlib
import sys

# Upstream's submodules, as `caffe.<name>`; draw needs pydot, an optional extra.
_SUBMODULES = ("pycaffe", "io", "net_spec", "coord_map", "classifier", "detector", "proto",
               "proto.caffe_pb2", "_caffe")
_OPTIONAL = ("draw",)


def register_as_caffe():
    """Makes ``import caffe`` (and ``caffe.io``, ``caffe.proto.caffe_pb2``, ...) give
    surgery.pycaffe's modules in this process, so that pycaffe scripts and tests run
    unchanged. Refused if another ``caffe`` was imported already."""
    package = sys.modules[__package__]
    existing = sys.modules.get("caffe")
    if existing is not None and existing is not package:
        raise ImportError(f"another caffe is imported already ({getattr(existing, '__file__', existing)}); "
                          "register surgery.pycaffe as caffe before anything imports caffe")
    sys.modules["caffe"] = package
    for name in _SUBMODULES:
        sys.modules[f"caffe.{name}"] = importlib.import_module(f"{__package__}.{name}")
    for name in _OPTIONAL:
        try:
            sys.modules[f"caffe.{name}"] = importlib.import_module(f"{__package__}.{name}")
        except ImportError:
            pass  # `import caffe.draw` then fails as it would with pycaffe without pydot
    return package
