"""caffe-surgery: make Caffe classifiers fully convolutional and run them densely.

The modules, each importing only those above it in this list: errors;
memory_budget, progress; atomic_files; net (Net, LayerInfo, lazy views), map_store,
pinned, boxes; geometry, labels, detections, plot, rarefy, presets,
pycaffe_sharing; convert, preprocess, overlay, report, tiles, window_labels,
detection_ap; sources, tiled_forward, pycaffe_2014, loss_map, finetune_data;
dense, pycaffe (pycaffe's face, a package); demo, dask_batch, finetune,
onnx_export; cli.
"""

import os

# OpenBLAS's idle threads spin for 2^28 cycles (about 0.1 s) before they
# sleep, so after each GEMM they hold the cores that libcaffe's own loops
# (im2col, pooling, LRN) then need: 10% of a CaffeNet forward on 2 cores.
# 2^16 cycles (about 20 us) still bridge the GEMMs of one convolution.
# OpenBLAS reads this when it loads, with _core below; a value set stays.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")
# GNU OpenMP's (oneDNN's, for convolution="onednn") likewise spin after each
# parallel region: measured side by side, a CaffeNet forward took 123 ms
# with them spinning and 89 ms with them sleeping, and the other algorithms'
# nets in the same process lost as much. Read when _core loads it too.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import _core  # after the settings above
from .errors import (BatchError, CaffeError, ExportError, FileError, MemoryLimitError,
                     NetDefinitionError, NumericWarning, ParseError, PreprocessingWarning,
                     ShapeError, SurgeryError)
from .net import LayerInfo, Net
from .geometry import Geometry, geometry
from .rarefy import RarefiedLayer, RarefyResult, rarefy, rarefy_factors
from .convert import ConvertedLayer, SurgeryResult, fully_convolutionalize
from . import preprocess
from .preprocess import Preprocess, load_image
from .detections import Detection
from .labels import load_labels
from .dense import DenseMap, dense_forward
from .pinned import pinned_empty  # GPU inputs copied in one DMA
from .window_labels import window_labels
from .finetune import FinetuneResult, finetune
from .onnx_export import export_onnx  # onnx itself is imported when called

set_log_level = _core.set_log_level
set_memory_limit = _core.set_memory_limit
set_mode = _core.set_mode          # "cpu" or "gpu", for the calling thread (Caffe's rule)
mode = _core.mode
set_device = _core.set_device
set_tf32 = _core.set_tf32        # opt-in TF32 tensor-core GEMMs in GPU mode, per thread
tf32 = _core.tf32
gpu_available = _core.gpu_available
memory_limit = _core.memory_limit
memory_in_use = _core.memory_in_use
# One thread count for OpenBLAS and libcaffe's own loops, process-wide;
# $SURGERY_NUM_THREADS sets it at import (the Dask workers' share of cores).
set_num_threads = _core.set_num_threads
num_threads = _core.num_threads
thread_counts = _core.thread_counts


def _threads_from_environment() -> None:
    """Applies $SURGERY_NUM_THREADS: 0 (all CPUs) to 4096. Any other value
    is one warning and ignored, so that a bad setting never stops the
    import (a Dask worker would die at start, over and over)."""
    text = os.environ.get("SURGERY_NUM_THREADS", "").strip()
    if not text:
        return
    # ASCII digits only: str.isdigit also takes "²", which int() refuses.
    if text.isascii() and text.isdigit() and len(text) <= 8 and int(text) <= 4096:
        set_num_threads(int(text))
        return
    import warnings
    warnings.warn(f"SURGERY_NUM_THREADS={text!r} ignored: give 0 (all CPUs) to 4096",
                  RuntimeWarning, stacklevel=2)


_threads_from_environment()

__all__ = [
    # errors and warnings
    "BatchError", "CaffeError", "ExportError", "FileError", "MemoryLimitError", "NetDefinitionError", "ParseError",
    "ShapeError", "SurgeryError", "NumericWarning", "PreprocessingWarning",
    # nets, surgery, dense inference
    "LayerInfo", "Net", "ConvertedLayer", "Geometry", "SurgeryResult", "fully_convolutionalize",
    "RarefiedLayer", "RarefyResult", "rarefy", "rarefy_factors",
    "geometry", "DenseMap", "Detection", "dense_forward", "Preprocess", "preprocess",
    "load_image", "load_labels",
    # dense fine-tuning
    "window_labels", "finetune", "FinetuneResult",
    # other formats
    "export_onnx",
    # settings
    "gpu_available", "mode", "set_mode", "set_device", "set_tf32", "tf32", "pinned_empty",
    "set_log_level",
    "memory_in_use", "memory_limit", "set_memory_limit", "num_threads", "set_num_threads",
    "thread_counts",
]
