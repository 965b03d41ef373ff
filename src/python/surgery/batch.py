"""Dense maps of many images on Dask (``dask.distributed``): one task per
image, one result per image in an output folder, nothing lost or broken.

- The engine is Dask's: by default an embedded ``LocalCluster`` of worker
  processes (one per core, one thread each, BLAS threads split so the
  processes do not oversubscribe the cores); ``client=`` or a scheduler
  address runs the same job on an existing cluster.
- Each worker process loads the net once (``_net``, a per-process cache)
  and reuses it for every task it runs; tasks carry only file names.
- Each image's results are written atomically: its map (``<image
  name>.npy`` or ``.zarr``, with the geometry beside it) and then its record
  (``<image name>.json``: the detections and what was computed), the
  record last. An image whose record exists is finished: a run killed
  half-way and restarted skips it and redoes the rest.
- A worker process that dies mid-task is replaced by its nanny and Dask
  runs its tasks again elsewhere; an image the net refuses (a bad file, a
  wrong size) is a failure with its reason, not a retry.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .atomic_files import remove_leftovers, write_text

RECORD = ".json"


@dataclass(frozen=True)
class Job:
    """What every task needs: the model's files, the output folder and
    dense_forward's options (all plain values, cheap to send)."""
    prototxt: str
    weights: Optional[str]
    out: str
    options: Dict[str, Any] = field(default_factory=dict)
    map_suffix: str = ".npy"
    threshold: float = 0.5
    nms_iou: float = 0.3
    background: Optional[Tuple[int, ...]] = None
    convolution: str = "caffe"


@dataclass
class Summary:
    """What a run did: images finished now, skipped (finished before),
    failed (image -> reason), and the wall time."""
    images: int
    done: List[str]
    skipped: List[str]
    failed: Dict[str, str]
    seconds: float

    @property
    def per_second(self) -> float:
        return len(self.done) / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        text = (f"{self.images} images: {len(self.done)} processed, {len(self.skipped)} "
                f"already finished, {len(self.failed)} failed; {self.seconds:.1f} s, "
                f"{self.per_second:.2f} images/s")
        return "\n".join([text] + [f"  failed: {image}: {why}"
                                   for image, why in sorted(self.failed.items())])


def result_paths(job: Job, image: str) -> Tuple[str, str]:
    """(map, record) of an image: named for the image's file name, suffix included
    (a.png and a.jpg in one folder stay apart)."""
    name = os.path.basename(image)
    return (os.path.join(job.out, name + job.map_suffix), os.path.join(job.out, name + RECORD))


def finished(job: Job, image: str) -> bool:
    """An image whose record was written (always after its map) is done."""
    _, record = result_paths(job, image)
    try:
        with open(record, encoding="utf-8") as f:
            return json.load(f).get("image") == image
    except (OSError, ValueError):
        return False


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


def run_image(job: Job, image: str) -> Dict[str, Any]:
    """One task: the image's map and record, written atomically. Returns a
    small report; an image surgery refuses gives {'image', 'error'}."""
    from .dense import dense_forward
    from .errors import SurgeryError
    start = time.perf_counter()
    map_path, record_path = result_paths(job, image)
    if finished(job, image):
        # Dask reruns a finished task whose result was held by a worker that
        # died; the image is done, its files stay as they are.
        return {"image": image, "seconds": 0.0}
    for path in (map_path, map_path + ".json", record_path):
        remove_leftovers(path)  # of a run killed while writing this image
    try:
        net = _net(job)
        dense = dense_forward(net, image, out=map_path, overwrite=True, **job.options)
        found = dense.detections(threshold=job.threshold, nms_iou=job.nms_iou,
                                 background=list(job.background) if job.background else None) \
            if dense.geometry else []
    except (SurgeryError, OSError, ValueError) as error:
        return {"image": image, "error": " ".join(str(error).split())}
    record = {"image": image, "map": os.path.basename(map_path),
              "map_shape": [int(s) for s in dense.scores.shape],
              "tiles": len(dense.tiles), "detections": [d.record() for d in found],
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


def dense_images(prototxt, weights, images: Sequence[str], out, *, client=None,
                 scheduler: Optional[str] = None, workers: Optional[int] = None,
                 map_suffix: str = ".npy", threshold: float = 0.5, nms_iou: float = 0.3,
                 background: Optional[Sequence[int]] = None, progress: bool = False,
                 retries: int = 2, convolution: str = "caffe", **options: Any) -> Summary:
    """Dense maps of `images` (paths), one result per image into folder
    `out` (made if missing), on Dask: `client`, else a cluster at
    `scheduler`, else an embedded LocalCluster of `workers` processes.
    Images already finished in `out` are skipped. `convolution` is each
    worker's Net.convolution ("caffe" or "winograd"). `options` go to
    dense_forward (mean, channel_swap, raw_scale, tile, labels, ...). On a
    cluster of several machines the model, the images and `out` must be at
    the same paths on every worker (a shared file system)."""
    from distributed import Client, as_completed
    os.makedirs(out, exist_ok=True)
    job = Job(os.path.abspath(os.fspath(prototxt)),
              None if weights is None else os.path.abspath(os.fspath(weights)),
              os.path.abspath(os.fspath(out)), options, map_suffix, threshold, nms_iou,
              tuple(background) if background else None, convolution)
    images = [os.path.abspath(os.fspath(i)) for i in images]
    names = {}
    for image in images:
        name = os.path.basename(image)
        if name in names and names[name] != image:
            raise ValueError(f"{names[name]!r} and {image!r} have the same file name, so "
                             "their results would collide in one folder: run them apart")
        names[name] = image
    skipped = [i for i in images if finished(job, i)]
    todo = [i for i in images if i not in set(skipped)]
    start = time.perf_counter()
    cluster = own = None
    kept = contextlib.ExitStack()
    if client is None and scheduler is None:
        # A worker the nanny restarts mid-run writes the environment again.
        kept.enter_context(parent_environment_kept())
    if client is None:
        if scheduler is None:
            cluster = local_cluster(workers)
        client = own = Client(scheduler if scheduler is not None else cluster)
    done: List[str] = []
    failed: Dict[str, str] = {}
    try:
        futures = [client.submit(run_image, job, image, key=f"dense-{image}", pure=False,
                                 retries=retries) for image in todo]
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(todo), unit="image")
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
            if bar is not None:
                bar.update()
        if bar is not None:
            bar.close()
    finally:
        if own is not None:
            own.close()
        if cluster is not None:
            cluster.close()
        kept.close()
    return Summary(len(images), done, skipped, failed, time.perf_counter() - start)
