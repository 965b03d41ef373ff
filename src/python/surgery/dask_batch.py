"""Dense maps of many images on Dask (``dask.distributed``): one task per
image, one result per image in an output folder, nothing lost or broken.

- The engine is Dask's: by default an embedded ``LocalCluster`` of worker
  processes (one per core, one thread each, BLAS threads split so the
  processes do not oversubscribe the cores); ``client=`` or a scheduler
  address runs the same job on an existing cluster. Dask moves tasks and
  their results between processes with pickle, so a scheduler or client
  given here must be trusted like code run in this process.
- Each worker process loads the net once (``_net``, a per-process cache)
  and reuses it for every task it runs; tasks carry only file names.
- Each image's results go to a folder of its own, ``<image file
  name>.result`` (a suffix no input may have, so no two images' files and
  no input and result can share a name): its map (``map.npy`` with the
  geometry in ``map.npy.json``, or ``map.zarr``) and then its record
  (``record.json``: the detections, and the model, settings and input
  digest they were computed from), each written atomically, the record
  last.
- Resume is checked: an image is reused only if its record reads as a
  record (a regular file, bounded, the expected fields) and names the same
  model, settings and input as this run. An unreadable record is redone; a
  record of another model, settings or input stops the run before any work
  unless ``overwrite=True``.
- A worker writes an image's folder under an exclusive lock on it, so the
  temporaries it clears there can only be those of a writer that died.
- A worker process that dies mid-task is replaced by its nanny and Dask
  runs its tasks again elsewhere; an image the net refuses (a bad file, a
  wrong size) is a failure with its reason, not a retry.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from .atomic_files import (RECORD_BYTES, open_regular_file, read_json_object,
                           remove_leftovers, write_text)
from .errors import BatchError, FileError, SurgeryError
from .progress import progress_bar

RESULT_SUFFIX = ".result"
RECORD = "record.json"
MAPS = {".npy": "map.npy", ".zarr": "map.zarr"}
RECORD_FORMAT = "caffe-surgery result 1"
# Options whose string value names a file: compared by content.
FILE_OPTIONS = ("mean", "labels")


@dataclass(frozen=True)
class Job:
    """What every task needs: the model's files, the output folder and
    dense_forward's options (all plain values, cheap to send), and what a
    record must name to count as this run's: the model's digests and the
    settings in canonical form."""
    prototxt: str
    weights: Optional[str]
    out: str
    options: Dict[str, Any] = field(default_factory=dict)
    map_suffix: str = ".npy"
    threshold: float = 0.5
    nms_iou: float = 0.3
    background: Optional[Tuple[int, ...]] = None
    convolution: str = "caffe"
    nms_mode: str = "class"
    model: Dict[str, Optional[str]] = field(default_factory=dict)
    settings: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Summary:
    """What a run did: images finished now, skipped (reused: finished
    before with the same model, settings and input), failed (image ->
    reason), redone (results there that were unreadable, or of another
    model, settings or input with overwrite), and the wall time. `results`:
    (map, record) paths of each image finished now or before, in the order
    of the images given."""
    images: int
    done: List[str]
    skipped: List[str]
    failed: Dict[str, str]
    seconds: float
    redone: List[str] = field(default_factory=list)
    results: Dict[str, Tuple[str, str]] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return len(self.done) / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        text = (f"{self.images} images: {len(self.done)} processed, {len(self.skipped)} "
                "reused from an earlier run with the same model and settings, "
                f"{len(self.failed)} failed; {self.seconds:.1f} s, "
                f"{self.per_second:.2f} images/s")
        lines = [text]
        if self.redone:
            lines.append(f"  {len(self.redone)} redone: their earlier results were unreadable "
                         "or of another model, settings or input")
        return "\n".join(lines + [f"  failed: {image}: {why}"
                                  for image, why in sorted(self.failed.items())])


# ---- names ----

def result_folder(job: Job, image: str) -> str:
    """The folder of an image's results: named for the image's file name,
    suffix included (a.png and a.jpg in one folder stay apart)."""
    return os.path.join(job.out, os.path.basename(image) + RESULT_SUFFIX)


def result_paths(job: Job, image: str) -> Tuple[str, str]:
    """(map, record) of an image, in its result folder."""
    folder = result_folder(job, image)
    return os.path.join(folder, MAPS[job.map_suffix]), os.path.join(folder, RECORD)


def check_inputs(out: str, images: Sequence[str]) -> None:
    """Refuses inputs whose results would collide: two with one file name,
    a name with the reserved suffix, a file inside a result folder of
    `out` (a map taken for an image)."""
    out_real = os.path.realpath(out)
    names: Dict[str, str] = {}
    for image in images:
        name = os.path.basename(image)
        if name.lower().endswith(RESULT_SUFFIX):
            raise BatchError(f"input {image!r}: names ending in {RESULT_SUFFIX!r} are reserved "
                             "for result folders; rename it")
        inside = os.path.relpath(os.path.realpath(image), out_real).split(os.sep)[:-1]
        if inside[:1] != [".."] and any(p.lower().endswith(RESULT_SUFFIX) for p in inside):
            raise BatchError(f"input {image!r} lies in a result folder of {out!r}: "
                             "results are not inputs")
        if name in names and names[name] != image:
            raise BatchError(f"{names[name]!r} and {image!r} have the same file name, so "
                             "their results would collide in one folder: run them apart")
        names[name] = image


# ---- what a record must name: model, settings, input ----

def file_digest(path: str, what: str) -> str:
    """SHA-256 (hex) of a regular file's bytes, read in chunks."""
    with open_regular_file(path, what) as f:
        try:
            return hashlib.file_digest(f, "sha256").hexdigest()
        except OSError as error:
            raise FileError(f"cannot read {what} {path!r}: {error}") from error


def model_digests(prototxt: str, weights: Optional[str]) -> Dict[str, Optional[str]]:
    return {"prototxt": file_digest(prototxt, "prototxt"),
            "weights": None if weights is None else file_digest(weights, "weights")}


def canonical(value: Any, key: str = "") -> Any:
    """`value` as plain JSON that two runs with the same setting write
    alike: arrays by dtype, shape and digest, files named by a setting
    (a mean or labels path) by their content's digest."""
    import numpy as np
    if key in FILE_OPTIONS and isinstance(value, (str, os.PathLike)):
        return {"file sha256": file_digest(os.fspath(value), key)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a Preprocess
        return {f.name: canonical(getattr(value, f.name), f.name)
                for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return {"array": data.dtype.str, "shape": list(data.shape),
                "sha256": hashlib.sha256(data.tobytes()).hexdigest()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 255 and 255.0 are one setting (the API's and the CLI's)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise BatchError(f"setting {key or value!r}: {type(value).__name__} cannot be recorded; "
                     "give numbers, lists, arrays or file names")


def settings_of(options: Dict[str, Any], map_suffix: str, threshold: float, nms_iou: float,
                background: Optional[Tuple[int, ...]], convolution: str,
                nms_mode: str) -> Dict[str, Any]:
    """Every setting that shapes an image's results, canonical."""
    settings = {key: canonical(value, key) for key, value in options.items()}
    settings.update(map_format=map_suffix.lstrip("."), threshold=canonical(threshold),
                    nms_iou=canonical(nms_iou), nms_mode=nms_mode,
                    background=canonical(background), convolution=convolution)
    return json.loads(json.dumps(settings, sort_keys=True))


# ---- records ----

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_detection(value: Any) -> bool:
    """A Detection.record(): whole numbers for the class and places, a
    label, a score."""
    places = ("class", "x0", "y0", "x1", "y1", "row", "column")
    return isinstance(value, dict) and set(value) == set(places) | {"label", "score"} \
        and all(_is_int(value[key]) for key in places) and isinstance(value["label"], str) \
        and isinstance(value["score"], (int, float)) and not isinstance(value["score"], bool)


# Field -> check of its value.
FIELDS = {
    "format": lambda v: v == RECORD_FORMAT,
    "image": lambda v: isinstance(v, str),
    "input": lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
    "model": lambda v: isinstance(v, dict) and set(v) == {"prototxt", "weights"}
    and all(d is None or isinstance(d, str) for d in v.values()),
    "settings": lambda v: isinstance(v, dict),
    "map": lambda v: v in MAPS.values(),
    "map_shape": lambda v: isinstance(v, list) and all(_is_int(s) and s >= 0 for s in v),
    "tiles": lambda v: _is_int(v) and v >= 0,
    "detections": lambda v: isinstance(v, list) and all(_is_detection(d) for d in v),
    "seconds": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "worker_pid": _is_int,
}


def read_record(path) -> Dict[str, Any]:
    """An image's record, checked: a regular file (a FIFO or device is
    refused before a byte is read), at most RECORD_BYTES, UTF-8 JSON of
    bounded nesting, an object with every field of the expected type.
    Raises FileError naming the file and why."""
    name = os.fsdecode(path)
    record = read_json_object(path, "result record", RECORD_BYTES)
    bad = [key for key, check in FIELDS.items() if key not in record or not check(record[key])]
    if bad:
        raise FileError(f"result record {name!r}: field(s) {', '.join(bad)} missing or wrong")
    return record


# A setting's value as a message shows it: a thousand labels or a mean
# image's digest would run over many lines.
SHOWN_CHARS = 60


def _shown(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    if len(text) <= SHOWN_CHARS:
        return text
    size = f" ({len(value)} values)" if isinstance(value, (list, dict)) else ""
    return f"{text[:SHOWN_CHARS - 3]}...{size}"


def _difference(old: Any, new: Any, key: str = "") -> Optional[Tuple[str, Any, Any]]:
    """(the dotted name, old value, new value) of the first setting that
    differs, looking into nested settings (preprocess.mean), or None."""
    if isinstance(old, dict) and isinstance(new, dict):
        for part in sorted(set(old) | set(new)):
            found = _difference(old.get(part), new.get(part), f"{key}.{part}" if key else part)
            if found is not None:
                return found
        return None
    if json.dumps(old, sort_keys=True) != json.dumps(new, sort_keys=True):
        return key, old, new
    return None


def mismatch(job: Job, record: Dict[str, Any], input_digest: str) -> Optional[str]:
    """Why `record` is not this run's result for an input of `input_digest`
    (None: it is)."""
    for part in ("prototxt", "weights"):
        if record["model"][part] != job.model[part]:
            return f"another model ({part} differs)"
    differs = _difference(record["settings"], job.settings)
    if differs is not None:
        key, old, new = differs
        return f"other settings ({key} was {_shown(old)}, now {_shown(new)})"
    if record["input"] != input_digest:
        return "another input (the image's bytes differ)"
    return None


def reusable(job: Job, image: str) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """(record, mismatch) of an image's earlier result: (None, None) when
    there is none or it is unreadable (redo it); (record, None) when it is
    this run's result; (record, why) when it is another's."""
    map_path, record_path = result_paths(job, image)
    try:
        record = read_record(record_path)
        if record["map"] != os.path.basename(map_path) or not os.path.lexists(map_path):
            return None, None
        # An image that cannot be read now is redone, and fails with its reason.
        return record, mismatch(job, record, file_digest(image, "image"))
    except FileError:
        return None, None


@dataclass
class Plan:
    """Which images a run reuses, which it computes, and of those which
    replace a result there (unreadable, or another run's with overwrite)."""
    reuse: List[str]
    todo: List[str]
    redo: List[str]


def plan(job: Job, images: Sequence[str], overwrite: bool) -> Plan:
    """Each image's earlier result judged; results of another model,
    settings or input refuse the run (naming the first and how many)
    unless `overwrite`."""
    reuse, todo, redo, others = [], [], [], []
    for image in images:
        if not os.path.lexists(result_paths(job, image)[1]):
            todo.append(image)
            continue
        record, why = reusable(job, image)
        if record is not None and why is None:
            reuse.append(image)
            continue
        todo.append(image)
        redo.append(image)
        if why is not None:
            others.append((image, why))
    if others and not overwrite:
        image, why = others[0]
        raise BatchError(f"{len(others)} result(s) in {job.out!r} come from {why} for "
                         f"{image!r}" + (" and others" if len(others) > 1 else "") +
                         ": give another output folder, or overwrite (--overwrite) to redo them")
    return Plan(reuse, todo, redo)


_NETS: Dict[Tuple[Any, ...], Any] = {}


def _net(job: Job):
    """The job's net, loaded once per process (the worker's), converted if it
    still ends in a classifier. Keyed by the files' names, sizes and times,
    so a long-lived worker reloads a model whose files changed, and by the
    convolution algorithm."""
    key = tuple((p, os.stat(p).st_size, os.stat(p).st_mtime_ns) if p else None
                for p in (job.prototxt, job.weights)) + (job.convolution,)
    if key not in _NETS:
        from .convert import fully_convolutionalize
        from .net import Net
        net = Net(job.prototxt, job.weights)
        if any(layer.type == "InnerProduct" for layer in net.layers):
            fully_convolutionalize(net)
        net.convolution = job.convolution
        _NETS[key] = net
    return _NETS[key]


@contextlib.contextmanager
def locked_folder(folder: str) -> Iterator[None]:
    """`folder` (made if missing, never through a symlink) held under an
    exclusive lock, so no two writers work in it at once; the lock goes
    with the process, so what a killed writer left there is anyone's to
    clear. Raises FileError if another writer holds it."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder)
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        raise FileError(f"result folder {folder!r} is not a folder: {error}") from error
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FileError(f"result folder {folder!r} is being written by another run") \
                from None
        yield
    finally:
        os.close(fd)


def clear_results(folder: str) -> None:
    """Removes an image's results and what killed writers left of them:
    the record first, so no record ever names a map that is not there.
    Only the names this module writes, only in the image's own folder."""
    for name in (RECORD, *MAPS.values(), MAPS[".npy"] + ".json"):
        path = os.path.join(folder, name)
        remove_leftovers(path)  # temporaries: hidden names starting ".<name>."
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)


def run_image(job: Job, image: str) -> Dict[str, Any]:
    """One task: the image's map and record, written atomically in its own
    folder under its lock. Returns a small report; an image surgery refuses
    gives {'image', 'error'}."""
    start = time.perf_counter()
    folder = result_folder(job, image)
    try:
        with locked_folder(folder):
            try:
                return write_results(job, image, start)
            except (SurgeryError, OSError, ValueError):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)  # a failed image leaves no folder (if nothing is in it)
                raise
    except (SurgeryError, OSError, ValueError) as error:
        return {"image": image, "error": " ".join(str(error).split())}


def write_results(job: Job, image: str, start: float) -> Dict[str, Any]:
    """The image's map and record, its folder locked by the caller."""
    from .dense import dense_forward
    map_path, record_path = result_paths(job, image)
    record, why = reusable(job, image)
    if record is not None and why is None:
        # Dask reruns a finished task whose result was held by a worker
        # that died; the image is done, its files stay as they are.
        return {"image": image, "seconds": 0.0}
    digest = file_digest(image, "image")  # an unreadable image keeps its results
    clear_results(result_folder(job, image))
    dense = dense_forward(_net(job), image, out=map_path, overwrite=True, **job.options)
    found = dense.detections(threshold=job.threshold, nms_iou=job.nms_iou,
                             nms_mode=job.nms_mode,
                             background=list(job.background) if job.background else None) \
        if dense.geometry else []
    record = {"format": RECORD_FORMAT, "image": image, "input": digest, "model": job.model,
              "settings": job.settings, "map": os.path.basename(map_path),
              "map_shape": [int(s) for s in dense.scores.shape], "tiles": len(dense.tiles),
              "detections": [d.record() for d in found],
              "seconds": time.perf_counter() - start, "worker_pid": os.getpid()}
    write_text(record_path, json.dumps(record, indent=1) + "\n")
    return {"image": image, "seconds": record["seconds"]}


def worker_environment(workers: int) -> Dict[str, str]:
    """Threads per worker process: the cores shared out, at least one. The
    BLAS reads its variable when it loads; surgery applies its own (for
    libcaffe's loops too) when imported."""
    threads = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    return {"OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads, "SURGERY_NUM_THREADS": threads}


@contextlib.contextmanager
def parent_environment_kept():
    """Dask's nanny writes its pre-spawn variables (OPENBLAS_NUM_THREADS=1
    and others) into this process's os.environ each time it starts a
    worker; put the environment back afterwards, so that programs this
    process starts later keep their own thread counts."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def local_cluster(workers: Optional[int] = None):
    """An embedded LocalCluster: `workers` processes (default: one per core),
    one thread each. The thread split is set before each worker is spawned
    (its BLAS reads it when it loads); this process's environment is left
    as it was."""
    import dask
    from distributed import LocalCluster
    workers = workers or os.cpu_count() or 1
    environment = worker_environment(workers)
    with parent_environment_kept(), \
            dask.config.set({"distributed.nanny.pre-spawn-environ": {
                **dask.config.get("distributed.nanny.pre-spawn-environ"), **environment}}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=":0", env=environment)


# A Dask address: a protocol and host with an optional port, or a host and
# port (tcp is Dask's default protocol).
ADDRESS = re.compile(r"(?:(?P<protocol>tcp|tls|ucx|ws|wss)://)?"
                     r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>[0-9]{1,5}))?")


def scheduler_target(scheduler) -> Dict[str, str]:
    """distributed.Client's keyword for `scheduler`: an address
    (tcp://HOST:PORT, tls://, ucx://, ws(s)://, inproc://, HOST:PORT) or a
    scheduler file; anything else is refused before anything is made."""
    text = os.fspath(scheduler)
    if re.fullmatch(r"inproc://\S+", text):
        return {"address": text}
    match = ADDRESS.fullmatch(text)
    if match and (match["protocol"] or match["port"]) and \
            (match["port"] is None or 0 < int(match["port"]) < 65536):
        return {"address": text}
    if os.path.isfile(text):
        return {"scheduler_file": text}
    raise BatchError(f"scheduler {text!r} is neither a Dask address (tcp://HOST:PORT, tls://, "
                     "ucx://, ws://, inproc://) nor a scheduler file")


def connect(scheduler, target: Dict[str, str]):
    """A Client of the scheduler at `target`; a scheduler that cannot be
    reached is a BatchError naming it."""
    from distributed import Client
    try:
        return Client(**target)
    except (OSError, TimeoutError, ValueError) as error:
        raise BatchError(f"cannot reach the Dask scheduler {os.fspath(scheduler)!r}: "
                         f"{' '.join(str(error).split())}") from error


def check_arguments(out: str, workers, map_suffix: str) -> None:
    if workers is not None and (not _is_int(workers) or workers < 1):
        raise BatchError(f"workers must be a whole number >= 1, not {workers!r}")
    if map_suffix not in MAPS:
        raise BatchError(f"map_suffix {map_suffix!r}: give one of {', '.join(MAPS)}")
    if os.path.lexists(out) and not os.path.isdir(out):
        raise FileError(f"output folder {out!r} is not a folder")


def make_job(prototxt, weights, out, *, map_suffix: str = ".npy", threshold: float = 0.5,
             nms_iou: float = 0.3, background: Optional[Sequence[int]] = None,
             convolution: str = "caffe", nms_mode: str = "class", **options: Any) -> Job:
    """The Job of a run: absolute paths, the model's digests (its files
    read once here) and the settings in canonical form."""
    prototxt = os.path.abspath(os.fspath(prototxt))
    weights = None if weights is None else os.path.abspath(os.fspath(weights))
    background = tuple(background) if background else None
    return Job(prototxt, weights, os.path.abspath(os.fspath(out)), options, map_suffix,
               threshold, nms_iou, background, convolution, nms_mode,
               model=model_digests(prototxt, weights),
               settings=settings_of(options, map_suffix, threshold, nms_iou, background,
                                    convolution, nms_mode))


def dense_images(prototxt, weights, images: Sequence[str], out, *, client=None,
                 scheduler: Optional[str] = None, workers: Optional[int] = None,
                 map_suffix: str = ".npy", threshold: float = 0.5, nms_iou: float = 0.3,
                 background: Optional[Sequence[int]] = None, progress: bool = False,
                 retries: int = 2, convolution: str = "caffe", overwrite: bool = False,
                 nms_mode: str = "class", **options: Any) -> Summary:
    """Dense maps of `images` (paths), one result folder per image into
    folder `out` (made if missing), on Dask: `client`, else a cluster at
    `scheduler` (an address or a scheduler file), else an embedded
    LocalCluster of `workers` processes. Images whose results in `out` name
    the same model, settings and input are reused; unreadable results are
    redone; results of another model, settings or input refuse the run
    (BatchError, before anything is made) unless `overwrite`. `convolution`
    is each worker's Net.convolution ("caffe", "winograd", "onednn" or "fastest"). `options` go
    to dense_forward (preprocess, tile, labels, ...). On
    a cluster of several machines the model, the images and `out` must be
    at the same paths on every worker (a shared file system); `client` and
    `scheduler` must be trusted (Dask moves tasks and results with pickle)."""
    out = os.path.abspath(os.fspath(out))
    check_arguments(out, workers, map_suffix)
    target = scheduler_target(scheduler) if client is None and scheduler is not None else None
    images = [os.path.abspath(os.fspath(i)) for i in images]
    check_inputs(out, images)
    job = make_job(prototxt, weights, out, map_suffix=map_suffix, threshold=threshold,
                   nms_iou=nms_iou, background=background, convolution=convolution,
                   nms_mode=nms_mode, **options)
    work = plan(job, images, overwrite)
    start = time.perf_counter()
    cluster = own = None
    kept = contextlib.ExitStack()
    if client is None and scheduler is None:
        # A worker the nanny restarts mid-run writes the environment again.
        kept.enter_context(parent_environment_kept())
    done: List[str] = []
    failed: Dict[str, str] = {}
    from distributed import as_completed
    try:
        if client is None:
            if target is None:
                cluster = local_cluster(workers)
                target = {"address": cluster}
            client = own = connect(scheduler, target)
        os.makedirs(out, exist_ok=True)  # only once everything is checked
        todo = work.todo
        futures = [client.submit(run_image, job, image, key=f"dense-{image}", pure=False,
                                 retries=retries) for image in todo]
        bar = progress_bar(total=len(todo), unit="image", enabled=progress)
        for future in as_completed(futures):
            try:
                report = future.result()
            except Exception as error:  # noqa: BLE001 - a task that failed on Dask's side
                image = todo[futures.index(future)]
                failed[image] = f"{type(error).__name__}: {error}"
            else:
                if "error" in report:
                    failed[report["image"]] = report["error"]
                else:
                    done.append(report["image"])
            bar.update()
        bar.close()
    finally:
        if own is not None:
            own.close()
        if cluster is not None:
            cluster.close()
        kept.close()
    finished = set(done) | set(work.reuse)
    return Summary(len(images), done, work.reuse, failed, time.perf_counter() - start,
                   work.redo, {image: result_paths(job, image) for image in images
                               if image in finished})
