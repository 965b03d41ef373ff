"""Dense fine-tuning: a classifier made fully convolutional, trained on
every window of whole images at once (the loss map, loss_map.py) so that it
learns background and half-windows, and becomes a sliding-window detector.

Everything the run reads is checked before the first iteration (boxes
against their images, labels against the classes, outputs against the
inputs); its results appear whole or not at all; its snapshots let it stop
(Ctrl-C included) and resume exactly where it was.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from .atomic_files import Outputs, RECORD_BYTES, read_json_object, write_text
from .boxes import BoxFile, boxes_by_image, read_boxes
from .convert import fully_convolutionalize
from .dense import dense_forward
from .detection_ap import APResult, average_precision
from .detection_picture import save_detections_picture
from .detections import Detection
from .errors import ParseError, ShapeError, SurgeryError
from .finetune_data import Example, Sampling, aligned_crop, crop_cells, sample
from .geometry import Geometry, geometry
from .labels import BACKGROUND, LabelsLike, check_labels
from .loss_map import copy_weights, definition_text, score_layer, train_definition, \
    with_new_head
from .net import Net, PathLike
from .preprocess import Preprocess
from .progress import progress_bar
from .window_labels import map_shape_of, window_labels

HEAD = "finetune_head"
SOLVERS = {"sgd": "SGD", "adam": "Adam"}
# A pretrained net fine-tuned on a few images forgets what it knew at 0.01:
# on 30 digit canvases LeNet's held-out AP peaked at 0.83 and fell, against
# 0.88 at 0.001 with its convolutions frozen.
DEFAULT_RATE = {"sgd": 0.001, "adam": 0.0001}


@dataclass
class FinetuneResult:
    deploy: str
    weights: str
    labels: str
    classes: List[str]
    iterations: int
    ap_before: Optional[APResult] = None
    ap_after: Optional[APResult] = None
    best_iteration: Optional[int] = None
    seconds: float = 0.0
    log: List[Dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class _Set:
    """Images as the net takes them, with their boxes as class indices."""
    names: List[str]
    loaded: List[np.ndarray]
    inputs: List[np.ndarray]
    truth: List[np.ndarray]


def _class_names(box_files: Sequence[BoxFile], net_labels: Optional[List[str]]
                 ) -> Tuple[List[str], bool]:
    """(the output classes, whether the net's head is kept as it is)."""
    used = box_files[0].labels
    if net_labels and BACKGROUND in net_labels and set(used) <= set(net_labels):
        return list(net_labels), True
    return sorted(used, key=lambda n: (not n.isdigit(), int(n) if n.isdigit() else 0, n)) + \
        [BACKGROUND], False


def _load_set(box_file: BoxFile, images: Sequence[str], classes: List[str],
              preprocess: Preprocess, channels: int) -> _Set:
    """Every image loaded and every box checked against it and the classes."""
    matched = boxes_by_image(box_file, images)
    out = _Set([], [], [], [])
    for name in images:
        loaded, data = preprocess(name, channels)
        height, width = data.shape[1:]
        rows = []
        for box in matched[name]:
            if box.x1 > width or box.y1 > height:
                raise ParseError(f"{box.where}: the box ({box.x0:g}, {box.y0:g}, {box.x1:g}, "
                                 f"{box.y1:g}) runs past image {name!r}, {width} x {height} "
                                 "pixels")
            if box.label not in classes:
                raise ParseError(f"{box.where}: label {box.label!r} is not a class the net is "
                                 f"trained on ({', '.join(classes[:20])}): the training boxes "
                                 "have none of it")
            rows.append((*box.corners, classes.index(box.label)))
        out.names.append(name)
        out.loaded.append(loaded)
        out.inputs.append(data)
        out.truth.append(np.asarray(rows, float).reshape(-1, 5))
    return out


def _val_images(box_file: BoxFile) -> List[str]:
    """The images a validation box file names, beside the file."""
    folder = os.path.dirname(box_file.path)
    return [image if os.path.isabs(image) else os.path.join(folder, image)
            for image in box_file.images]


def _head_weights(net: Net, head: str, classes: List[str], old_labels: Optional[List[str]],
                  rng: np.random.Generator) -> List[np.ndarray]:
    """The new head's blobs: a class's row copied from the old head where
    the old labels name it, random (of the old rows' scale) otherwise."""
    old = [np.asarray(b) for b in net.params[head]]
    weights = old[0].reshape(old[0].shape[0], -1)
    scale = float(weights.std()) or 0.01
    new_w = rng.normal(0, scale, (len(classes), weights.shape[1])).astype(np.float32)
    new_b = np.zeros(len(classes), np.float32)
    for k, name in enumerate(classes):
        if old_labels and name in old_labels:
            new_w[k] = weights[old_labels.index(name)]
            if len(old) > 1:
                new_b[k] = old[1][old_labels.index(name)]
    return [new_w.reshape(len(classes), *old[0].shape[1:])] + ([new_b] if len(old) > 1 else [])


def solver_text(solver: str, base_lr: float, momentum: float, weight_decay: float,
                seed: int) -> str:
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, not {solver!r}")
    text = (f'type: "{SOLVERS[solver]}" base_lr: {base_lr!r} momentum: {momentum!r} '
            f'weight_decay: {weight_decay!r} lr_policy: "fixed" random_seed: {seed}')
    if solver == "adam":
        text += " momentum2: 0.999 delta: 1e-8"
    return text


def detect(net: Net, data: _Set, classes: List[str], preprocess: Preprocess,
           threshold: float, nms_iou: float, net_labels: Optional[List[str]] = None,
           stride: Optional[int] = None) -> List[List[Detection]]:
    """`net`'s detections on each image of `data`; the net's classes
    (`net_labels`, default `classes`) matched to `classes` by name, and the
    one named background never reported."""
    names = net_labels or classes
    skip = [k for k, name in enumerate(names) if name == BACKGROUND or name not in classes]
    found = []
    for dense in dense_forward(net, list(data.loaded), preprocess=preprocess, labels=names,
                               stride=stride):
        found.append([Detection(d.box, classes.index(d.label), d.label, d.score, d.cell)
                      for d in dense.detections(threshold, nms_iou, background=skip or None)])
    return found


def evaluate(net: Net, data: _Set, classes: List[str], preprocess: Preprocess,
             threshold: float, nms_iou: float, net_labels: Optional[List[str]] = None,
             stride: Optional[int] = None) -> APResult:
    """AP@0.5 of ``detect``'s detections on `data`."""
    return average_precision(detect(net, data, classes, preprocess, threshold, nms_iou,
                                    net_labels, stride), data.truth)


def score_detector(prototxt: PathLike, weights: PathLike, boxes: PathLike,
                   labels: LabelsLike, *, stride: Optional[int] = None,
                   preprocess: Optional[Preprocess] = None, threshold: float = 0.5,
                   nms_iou: float = 0.3) -> APResult:
    """AP@0.5 of a net (``finetune``'s deploy, weights and labels, or the
    classifier it started from) on the images of box file `boxes` (named
    relative to it), at output `stride` (the net's by default)."""
    net = Net(prototxt, weights)
    channels = net.declared_input_shapes()[net.inputs[0]][1]
    fully_convolutionalize(net)  # a classifier is scored as its converted net
    classes = check_labels(labels, score_layer(definition_text(net))[2])
    box_file = read_boxes(boxes)
    preprocess = preprocess or Preprocess()
    data = _load_set(box_file, _val_images(box_file), classes, preprocess, channels)
    return evaluate(net, data, classes, preprocess, threshold, nms_iou, stride=stride)


class _Run:
    """The folder of one run: its outputs, snapshots and resumable state."""

    def __init__(self, out: PathLike, inputs: Sequence[Tuple[str, object]]) -> None:
        self.out = os.fspath(out)
        if os.path.exists(self.out) and not os.path.isdir(self.out):
            raise SurgeryError(f"out {self.out!r} is not a folder")
        os.makedirs(os.path.join(self.out, "snapshots"), exist_ok=True)
        claims = Outputs(inputs)
        self.files = {what: claims.claim(os.path.join(self.out, name), what) for what, name in (
            ("deploy", "deploy.prototxt"), ("weights", "weights.caffemodel"),
            ("labels", "labels.txt"), ("log", "log.csv"), ("plot", "log.png"),
            ("detections", "detections.png"))}

    def snapshot_path(self, iteration: int, ext: str) -> str:
        return os.path.join(self.out, "snapshots", f"iter_{iteration}.{ext}")

    def latest(self) -> Optional[int]:
        done = [int(name[5:-5]) for name in os.listdir(os.path.join(self.out, "snapshots"))
                if name.startswith("iter_") and name.endswith(".json") and name[5:-5].isdigit()]
        return max(done) if done else None

    def save(self, trainer: _core.Trainer, rng: np.random.Generator, state: dict) -> None:
        k = trainer.iteration
        trainer.snapshot(self.snapshot_path(k, "caffemodel"), self.snapshot_path(k, "solverstate"))
        # Last: a snapshot counts only once its record is there. Caffe's own
        # generator draws Dropout's masks: without it a resume is not exact.
        write_text(self.snapshot_path(k, "json"),
                   json.dumps({**state, "rng": rng.bit_generator.state,
                               "caffe_rng": trainer.random_state}))

    def restore(self, trainer: _core.Trainer, rng: np.random.Generator, k: int) -> dict:
        record = self.snapshot_path(k, "json")
        state = read_json_object(record, "snapshot record", RECORD_BYTES * 16)
        caffe_rng = state.pop("caffe_rng", None)  # records written before it lack it
        if caffe_rng is not None:
            try:
                trainer.random_state = caffe_rng if isinstance(caffe_rng, str) else ""
            except ParseError as error:
                raise ParseError(f"{record}: caffe_rng: {error}") from None
        trainer.restore(self.snapshot_path(k, "caffemodel"), self.snapshot_path(k, "solverstate"))
        rng.bit_generator.state = state.pop("rng")
        return state


def _write_log(files: Dict[str, str], log: List[Dict[str, float]]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, ["iteration", "loss", "ap"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(log)
    write_text(files["log"], text.getvalue(), "log")
    from matplotlib.figure import Figure
    figure = Figure(figsize=(7, 4), dpi=100)
    axes = figure.subplots()
    axes.plot([r["iteration"] for r in log], [r["loss"] for r in log], label="loss")
    axes.set_xlabel("iteration")
    scored = [r for r in log if r.get("ap") not in (None, "")]
    if scored:
        twin = axes.twinx()
        twin.plot([r["iteration"] for r in scored], [r["ap"] for r in scored], "o-", color="C1",
                  label="validation AP@0.5")
        twin.set_ylim(0, 1)
        twin.legend(loc="upper right")
    axes.legend(loc="upper left")
    from .overlay import write_figure
    write_figure(figure, files["plot"])


def finetune(prototxt: PathLike, weights: PathLike, images: Sequence[PathLike],
             boxes: PathLike, out: PathLike, *, labels: Optional[LabelsLike] = None,
             iterations: int = 400, val: Optional[PathLike] = None, val_every: int = 100,
             solver: str = "sgd", base_lr: Optional[float] = None, momentum: float = 0.9,
             weight_decay: float = 5e-4, freeze: Optional[int] = None,
             stride: Optional[int] = None,
             crop: Optional[Tuple[int, int]] = None, flip: bool = False,
             background_ratio: Optional[float] = None, pos_iou: float = 0.5,
             neg_iou: float = 0.3, snapshot_every: int = 200, resume: bool = False,
             seed: int = 0, preprocess: Optional[Preprocess] = None,
             threshold: float = 0.5, nms_iou: float = 0.3,
             progress: bool = True) -> FinetuneResult:
    """Fine-tune classifier (or converted net) `prototxt` + `weights` densely
    on `images` with the boxes of `boxes` (CSV or COCO; box_file.py), and
    write ``out/deploy.prototxt``, ``out/weights.caffemodel`` and
    ``out/labels.txt`` (a pair loadable by Caffe, OpenCV and surgery.Net),
    ``out/log.csv`` and ``out/log.png``; snapshots under ``out/snapshots``
    every `snapshot_every` iterations and on Ctrl-C. `resume` goes on from
    the latest snapshot there, exactly (same device and thread count).

    The head is kept if `labels` names every box class plus ``background``;
    otherwise it is replaced by one output per box class plus background.
    `val` (a box file naming its images, relative to it) is scored (AP at
    IoU 0.5) every `val_every` iterations and at the end; the best weights
    are the ones written, and ``out/detections.png`` shows the first
    validation image's detections before and after; `stride` is the output stride the detector is
    scored at (the net rarefied to it, exactly: surgery.rarefy; run
    ``caffe-surgery dense --stride`` alike). `freeze` keeps the first
    `freeze` layers with weights as they are (default: all but the last two,
    whose few images then adjust the top of the net only);
    `background_ratio` keeps at most that many background cells per object
    cell in each crop."""
    started = time.monotonic()
    preprocess = preprocess or Preprocess()
    solver = solver.lower()
    image_names = [os.fsdecode(image) for image in images]
    run = _Run(out, [("prototxt", prototxt), ("weights", weights), ("box file", boxes),
                     ("validation box file", val)] + [("image", i) for i in image_names])
    train_boxes = read_boxes(boxes)
    val_boxes = read_boxes(val) if val is not None else None
    net = Net(prototxt, weights)
    channels = net.declared_input_shapes()[net.inputs[0]][1]
    fully_convolutionalize(net)
    geo = geometry(net)
    if geo is None:
        raise ShapeError("the net's geometry is unknown: its cells have no windows to train on")
    head, _, outputs = score_layer(definition_text(net))
    # Without names, a class is named by its index (as dense maps name them),
    # so box labels "0".."9" keep LeNet's rows for the digits.
    net_labels = (check_labels(labels, outputs) if labels is not None
                  else [str(k) for k in range(outputs)])
    classes, keep_head = _class_names([train_boxes], net_labels)
    train = _load_set(train_boxes, image_names, classes, preprocess, channels)
    valid = (_load_set(val_boxes, _val_images(val_boxes), classes, preprocess, channels)
             if val_boxes else None)
    rng = np.random.default_rng(seed)
    examples = _examples(net, geo, train, classes, pos_iou, neg_iou)

    crop_hw = aligned_crop(geo, [x.shape[1:] for x in train.inputs], crop)
    deploy = definition_text(net)
    start_weights: Dict[str, List[np.ndarray]] = {n: net.params[n] for n in net.params}
    if not keep_head:
        start_weights[HEAD] = _head_weights(net, head, classes, net_labels, rng)
        deploy = with_new_head(deploy, len(classes), HEAD)
    weighted = list(net.params)
    frozen = weighted[:max(0, len(weighted) - 2) if freeze is None else freeze]
    train_net = train_definition(deploy, (1, channels, *crop_hw), crop_cells(geo, crop_hw), frozen)
    trainer = _core.Trainer(solver_text(solver, base_lr or DEFAULT_RATE[solver], momentum,
                                        weight_decay, seed), train_net)
    copy_weights(trainer, start_weights)
    found_before = (detect(net, valid, classes, preprocess, threshold, nms_iou, net_labels,
                           stride) if valid else None)
    ap_before = average_precision(found_before, valid.truth) if valid else None

    state: Dict = {"log": [], "best_ap": -1.0, "best_iteration": None}
    if resume and run.latest() is not None:
        state = run.restore(trainer, rng, run.latest())
    how = Sampling(crop_hw, classes.index(BACKGROUND), flip, background_ratio, pos_iou, neg_iou)
    best_path = os.path.join(run.out, "snapshots", "best.caffemodel")
    deploy_path = os.path.join(run.out, "snapshots", "deploy.prototxt")
    write_text(deploy_path, deploy)
    bar = progress_bar(total=iterations, initial=trainer.iteration, unit="it",
                       desc="fine-tuning", enabled=progress)
    running, start = None, (trainer.iteration, rng.bit_generator.state)
    try:
        while trainer.iteration < iterations:
            # Where this iteration starts: a Ctrl-C before its step goes
            # back here, so that the snapshot's solver and crops agree.
            start = (trainer.iteration, rng.bit_generator.state)
            example = examples[int(rng.integers(len(examples)))]
            data, label = sample(rng, example, geo, how)
            loss = trainer.step({"data": data[np.newaxis], "label": label[np.newaxis]
                                 .astype(np.float32)})
            running = loss if running is None else 0.95 * running + 0.05 * loss
            k = trainer.iteration
            row = {"iteration": k, "loss": round(float(loss), 6), "ap": ""}
            if valid and (k % val_every == 0 or k == iterations):
                trainer.save_weights(os.path.join(run.out, "snapshots", "candidate.caffemodel"))
                scored = evaluate(Net(deploy_path, os.path.join(run.out, "snapshots",
                                                                "candidate.caffemodel")),
                                  valid, classes, preprocess, threshold, nms_iou,
                                  stride=stride)
                row["ap"] = round(scored.ap, 6)
                if scored.ap > state["best_ap"]:
                    state["best_ap"], state["best_iteration"] = scored.ap, k
                    os.replace(os.path.join(run.out, "snapshots", "candidate.caffemodel"),
                               best_path)
            state["log"].append(row)
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}", ap=row["ap"] or "-")
            if k % snapshot_every == 0:
                run.save(trainer, rng, state)
    except KeyboardInterrupt:
        if trainer.iteration == start[0]:
            rng.bit_generator.state = start[1]
        run.save(trainer, rng, state)
        raise
    finally:
        bar.close()
    if trainer.iteration % snapshot_every:
        run.save(trainer, rng, state)
    final = best_path if state["best_iteration"] is not None else \
        os.path.join(run.out, "snapshots", "final.caffemodel")
    if state["best_iteration"] is None:
        trainer.save_weights(final)
    Net(deploy_path, final).save(run.files["deploy"], run.files["weights"])
    write_text(run.files["labels"], "\n".join(classes) + "\n", "labels")
    _write_log(run.files, state["log"])
    ap_after = None
    if valid:
        found_after = detect(Net(deploy_path, final), valid, classes, preprocess, threshold,
                             nms_iou, stride=stride)
        ap_after = average_precision(found_after, valid.truth)
        save_detections_picture(
            run.files["detections"], valid.loaded[0],
            [(f"before (validation AP {ap_before.ap:.2f})", found_before[0]),
             (f"after (validation AP {ap_after.ap:.2f})", found_after[0])], valid.truth[0])
    return FinetuneResult(run.files["deploy"], run.files["weights"], run.files["labels"],
                          classes, trainer.iteration, ap_before, ap_after,
                          state["best_iteration"], time.monotonic() - started, state["log"])


def _examples(net: Net, geo: Geometry, data: _Set, classes: List[str], pos_iou: float,
              neg_iou: float) -> List[Example]:
    """Each training image with its boxes; refused when a class has no
    window of the whole image that overlaps one of its boxes enough to be
    trained on."""
    background = classes.index(BACKGROUND)
    out, seen = [], set()
    for name, x, truth in zip(data.names, data.inputs, data.truth):
        labels = window_labels(geo, x.shape[1:], truth, background=background, pos_iou=pos_iou,
                               neg_iou=neg_iou, map_shape=map_shape_of(net, x.shape[1:]))
        seen.update(np.unique(labels).tolist())
        out.append(Example(name, x, truth))
    absent = [c for k, c in enumerate(classes) if k not in seen and
              any(k in t[:, 4] for t in data.truth)]
    if absent:
        raise ShapeError(f"no window overlaps a box of class(es) {', '.join(absent)} by IoU "
                         f">= {pos_iou} (the net's windows are {geo.window[1]} x "
                         f"{geo.window[0]} pixels at stride {geo.stride[0]}): boxes much "
                         "smaller or larger than a window cannot be learned; lower pos_iou "
                         "or rescale the images")
    return out

