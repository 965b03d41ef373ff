"""The ``caffe-surgery`` command (also ``python -m surgery``).

Exit codes: 0 all done; 1 some images failed (each reported on one line,
the others processed); 2 a usage error (one line ``caffe-surgery: error:
...``), found before any computation."""

from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import os
import pathlib
import re
import sys
import warnings
from dataclasses import dataclass, replace
from typing import Any, List, Optional, Sequence, Tuple

from . import demo
from .atomic_files import Outputs, write_text
from .convert import fully_convolutionalize
from .dense import DenseMap, dense_forward
from .detections import NMS_MODES, Detection
from .errors import NumericWarning, PreprocessingWarning, SurgeryError
from .finetune import finetune
from .geometry import as_window, geometry
from .labels import BACKGROUND, check_labels
from .map_store import load_map
from .net import Net
from .overlay import picture_format
from .preprocess import Preprocess, load_mean
from .presets import PRESETS
from .progress import echo, progress_bar, wants_progress
from .rarefy import output_stride, rarefy
from .report import format_dense
from .sources import open_source

PROG = "caffe-surgery"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm", ".pbm", ".npy"}


class UsageError(Exception):
    """A mistake in the command line or its files: exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error printed as one line (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{PROG}: error: {message}\n")


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def image_error(image: str, error: BaseException) -> str:
    """The line that reports an image that failed (a bare MemoryError has
    no text: its type says it)."""
    return f"{PROG}: error: {image}: {one_line(error) or type(error).__name__}"


# ---- argument types: each refuses a bad value with a one-line message ----

def numbers(kind=float, count: Optional[int] = None):
    def parse(text: str):
        parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
        try:
            values = [kind(p) for p in parts]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a list of {'integers' if kind is int else 'numbers'}"
                " (e.g. 104,117,123)") from None
        if not values or (count is not None and len(values) not in (1, count)):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {count or 'some'} values")
        return values
    return parse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def finite_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not in 0..1")
    return value


def scheduler_argument(text: str) -> str:
    """A Dask address or scheduler file, checked before anything is made."""
    from .dask_batch import scheduler_target
    from .errors import BatchError
    try:
        scheduler_target(text)
    except BatchError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def mean_argument(text: str):
    """Per-channel values (104,117,123 or "104 117 123"), else a mean file."""
    try:
        return numbers()(text)
    except argparse.ArgumentTypeError:
        return text


# ---- images ----

def expand_images(arguments: Sequence[str]) -> List[str]:
    """Folders become the images in them (sorted, not recursive), globs the
    files they match; anything else is kept as given (a missing path is
    reported when its turn comes)."""
    found: List[str] = []
    for arg in arguments:
        if os.path.isdir(arg):
            found += sorted(str(p) for p in pathlib.Path(arg).iterdir()
                            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif not os.path.exists(arg) and glob.has_magic(arg):
            matches = sorted(glob.glob(arg))
            found += matches if matches else [arg]
        else:
            found.append(arg)
    return found


def picture_paths(dest: Optional[str], images: Sequence[str]) -> List[Optional[str]]:
    """Where each image's picture goes: DEST itself for one image; for
    several, DEST/<stem>.png if DEST is a folder (existing, or ending in
    '/'), else <DEST's stem>-<image stem><DEST's suffix>."""
    if dest is None:
        return [None] * len(images)
    folder = os.path.isdir(dest) or dest.endswith(os.sep)
    if folder:
        paths = [os.path.join(dest, pathlib.Path(i).stem + ".png") for i in images]
    elif len(images) == 1:
        paths = [dest]
    else:
        base, suffix = os.path.splitext(dest)
        paths = [f"{base}-{pathlib.Path(i).stem}{suffix}" for i in images]
    return paths


def claim_outputs(args: argparse.Namespace, images: Sequence[str],
                  pictures: Sequence[Optional[str]]) -> None:
    """--json, --csv and each picture checked as outputs before anything is
    computed: none may be a file the run reads, nor another output, nor
    anything but a regular file or a free name (atomic_files.Outputs)."""
    mean_file = args.mean if isinstance(args.mean, str) else None
    outputs = Outputs([("the prototxt", args.prototxt), ("the weights", args.weights),
                       ("the mean file", mean_file), ("the labels file", args.labels)]
                      + [("input image", image) for image in images])
    for flag in ("json", "csv"):
        if getattr(args, flag):
            outputs.claim(getattr(args, flag), f"--{flag}")
    for image, picture in zip(images, pictures):
        if picture:
            outputs.claim(picture, f"the picture of {image!r}")


# ---- commands ----

def _info(args: argparse.Namespace) -> int:
    net = Net(args.prototxt, args.weights)
    print(repr(net))
    params_of = net.params
    for layer in net.layers:
        params = params_of.get(layer.name, [])
        shapes = ", ".join("x".join(map(str, p.shape)) for p in params)
        print(f"  {layer.name:<16} {layer.type:<14} -> {','.join(layer.tops):<16} {shapes}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    out = pathlib.Path(args.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {str(out)!r} is a file; give a folder")
    shape = args.input_shape
    if shape is not None and len(shape) != 4:
        raise UsageError(f"--input-shape needs N,C,H,W, not {len(shape)} values")
    out.mkdir(parents=True, exist_ok=True)
    stem = pathlib.Path(args.prototxt).stem
    out_prototxt = out / f"{stem}_full_conv.prototxt"
    out_weights = out / f"{pathlib.Path(args.weights).stem}_full_conv.caffemodel" if args.weights else None
    result = fully_convolutionalize(args.prototxt, args.weights, out_prototxt, out_weights,
                                    suffix=None if args.keep_names else args.suffix,
                                    input_shape=shape, stride=args.stride)
    print(result)
    print(f"wrote {out_prototxt}" + (f" and {out_weights}" if out_weights else ""))
    return 0


def _export(args: argparse.Namespace) -> int:
    from .onnx_export import export_onnx  # onnx is imported only for this command
    outputs = Outputs([("the prototxt", args.prototxt), ("the weights", args.weights)])
    target = outputs.claim(args.output, "the ONNX file")
    net = Net(args.prototxt, args.weights)
    unknown = [blob for blob in args.outputs or () if blob not in net.blobs]
    if unknown:
        raise UsageError(f"--outputs: no blob named {', '.join(map(repr, unknown))} in "
                         f"{args.prototxt!r}; its blobs are {', '.join(net.blobs)}")
    export_onnx(net, target, outputs=args.outputs)
    print(f"wrote {target}")
    return 0


def _class_index(choice: Optional[str], labels: Optional[List[str]], classes: int) -> Optional[int]:
    if choice is None:
        return None
    if re.fullmatch(r"\d+", choice):
        index = int(choice)
    elif labels and choice in labels:
        index = labels.index(choice)
    else:
        raise UsageError(f"--class {choice!r} is neither a class index nor a label")
    if not 0 <= index < classes:
        raise UsageError(f"--class {index} is outside 0..{classes - 1}")
    return index


@dataclass(frozen=True)
class DenseOptions:
    """What ``caffe-surgery dense`` was asked to do, checked: built from the
    command line in one place (dense_options), where every usage error that
    needs no net is found; those that need the net (labels, class,
    background, the mean's channels) are found when it is loaded (for_net).
    Both before the first forward."""
    prototxt: str
    weights: str
    images: List[str]
    pictures: List[Optional[str]]
    preprocess: Preprocess
    window: Any
    tile: Any
    stride: Optional[int]
    convolution: str
    labels: Any  # the file's name; the names in it once checked against the net
    cls: Any  # as given; the class index once checked against the net
    background: Optional[List[int]]
    threshold: float
    nms_iou: float
    nms_mode: str
    json: Optional[str]
    csv: Optional[str]
    side_by_side: bool
    batch_size: int
    out: Optional[str]
    workers: Optional[int]
    scheduler: Optional[str]
    overwrite: bool
    map_format: str
    grid: bool
    quiet: bool


def _check_picture(picture: Optional[str]) -> None:
    if picture and not (os.path.isdir(picture) or picture.endswith(os.sep)):
        picture_format(picture)
    if picture and picture.endswith(os.sep) and not os.path.isdir(picture):
        raise UsageError(f"--picture folder {picture!r} does not exist")


def _check_destination(args: argparse.Namespace) -> None:
    """--out and the options that go with it, or those that go without it."""
    if args.out is None:
        if args.workers is not None or args.scheduler is not None or args.overwrite:
            raise UsageError("--workers, --scheduler and --overwrite go with the results of "
                             "--out: give --out FOLDER")
        return
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out!r} is a file; give a folder")


def dense_options(args: argparse.Namespace) -> DenseOptions:
    """The dense command's options from its command line; a usage error
    (UsageError, or the SurgeryError of a bad file) before any work."""
    _check_picture(args.picture)
    images = expand_images(args.images)
    pictures = picture_paths(args.picture, images)
    claim_outputs(args, images, pictures)
    mean = load_mean(args.mean) if isinstance(args.mean, str) else args.mean
    window = as_window(args.window[0] if args.window and len(args.window) == 1 else args.window)
    if args.size is not None and len(args.size) != 2:
        raise UsageError("--size needs H,W")
    tile = _tile_argument(args.tile)
    _check_destination(args)
    given = {key: value for key, value in dict(
        mean=mean, channel_swap=args.channel_swap, raw_scale=args.raw_scale,
        input_scale=args.input_scale, size=args.size).items() if value is not None}
    preprocess = Preprocess.preset(args.preset, **given) if args.preset else Preprocess(**given)
    return DenseOptions(
        prototxt=args.prototxt, weights=args.weights, images=images, pictures=pictures,
        preprocess=preprocess, window=window, tile=tile, stride=args.stride,
        convolution=args.convolution, labels=args.labels, cls=args.cls,
        background=args.background or None, threshold=args.threshold,
        nms_iou=args.nms_iou, nms_mode=args.nms,
        json=args.json, csv=args.csv, side_by_side=args.side_by_side,
        batch_size=args.batch_size, out=args.out, workers=args.workers,
        scheduler=args.scheduler, overwrite=args.overwrite, map_format=args.map_format,
        grid=args.grid, quiet=args.quiet)


def dense_net(options: DenseOptions) -> Tuple[Net, List[Any]]:
    """The net to run, converted and rarefied as asked, with the reports of
    what was done to it (printed once every check has passed)."""
    net = Net(options.prototxt, options.weights)
    conversion = (fully_convolutionalize(net)
                  if any(layer.type == "InnerProduct" for layer in net.layers) else None)
    rarefied = (rarefy(net, stride=options.stride) if options.stride is not None
                and output_stride(net) != (options.stride, options.stride) else None)
    net.convolution = options.convolution
    return net, [report for report in (conversion, rarefied) if report is not None]


def for_net(options: DenseOptions, net: Net) -> DenseOptions:
    """`options` checked against the net they run: labels, class and
    background within its classes, the preprocessing fit for its input, a
    threshold its scores can reach."""
    output = net.outputs[0] if net.outputs else None
    classes = int(net.blobs[output].shape[1]) if output else 0
    labels = check_labels(options.labels, classes) if options.labels else None
    _check_preprocessing(options.preprocess, net, options.window)
    cls = _class_index(options.cls, labels, classes)
    for b in options.background or ():
        if not 0 <= b < classes:
            raise UsageError(f"--background {b} is outside 0..{classes - 1}")
    # A fine-tuned net's "no object" class is never an object found.
    background = sorted({*(options.background or ()),
                         *(i for i, name in enumerate(labels or ()) if name == BACKGROUND)})
    if output and _is_softmax(net, output) and not 0 <= options.threshold <= 1:
        raise UsageError(f"--threshold {options.threshold:g} is outside 0..1, where the "
                         f"net's output {output!r} (a Softmax) lies: nothing would be detected")
    return replace(options, labels=labels, cls=cls, background=background or None)


def _check_preprocessing(prep: Preprocess, net: Net, window) -> None:
    """--mean, --channel-swap and --size fit the net's input."""
    channels = net.declared_input_shapes()[net.inputs[0]][1] if net.inputs else 0
    mean = prep.mean
    if mean is not None and getattr(mean, "ndim", 1) == 1 and len(mean) != channels:
        raise UsageError(f"--mean has {len(mean)} values, the net takes {channels} channels")
    if prep.channel_swap is not None and len(prep.channel_swap) != channels:
        raise UsageError(f"--channel-swap {','.join(map(str, prep.channel_swap))} orders "
                         f"{len(prep.channel_swap)} channels, the net takes {channels} "
                         f"(e.g. {','.join(map(str, reversed(range(channels))))})")
    geo = geometry(net, None, window) if prep.size is not None else None
    if geo is not None and (prep.size[0] < geo.min_input[0] or prep.size[1] < geo.min_input[1]):
        raise UsageError(f"--size {prep.size[0]},{prep.size[1]} is smaller than the net's "
                         f"smallest input, {geo.min_input[0]},{geo.min_input[1]} (one cell)")


def _is_softmax(net: Net, blob: str) -> bool:
    """Whether `blob` is made last by a Softmax layer (its values in 0..1)."""
    makers = [layer.type for layer in net.layers if blob in layer.tops]
    return bool(makers) and makers[-1] == "Softmax"


def _dense(args: argparse.Namespace) -> int:
    # Everything that can be checked is checked before the first forward.
    options = dense_options(args)
    net, reports = dense_net(options)
    options = for_net(options, net)
    if options.out is not None:
        return _dense_to_folder(options, net, reports)
    _print_reports(options, reports)
    return run_dense(options, net)


def _print_reports(options: DenseOptions, reports: List[Any]) -> None:
    """What was done to the net (its conversion's warnings among them),
    once per run, on stderr."""
    if not options.quiet:
        for report in reports:
            print(report, file=sys.stderr)


def run_dense(options: DenseOptions, net: Net) -> int:
    """Runs the checked `options` image by image on `net`: a line per image,
    each failure on stderr (exit 1), the pictures, --json and --csv; a
    progress bar on a terminal (per image, and per tile of a tiled one or per
    layer of one run whole)."""
    images = options.images
    records, failures = [], 0
    progress = wants_progress(options.quiet)
    forward = dict(preprocess=options.preprocess, labels=options.labels,
                   window=options.window, tile=options.tile, progress=progress)
    # Tiled images each have a map of their own size: held one at a time.
    batch = 1 if options.tile is not None else options.batch_size
    with progress_bar(total=len(images), unit="image",
                      enabled=progress and len(images) > 1) as bar:
        for image, picture, dense in _maps_in_batches(net, images, options.pictures, forward,
                                                      batch):
            bar.update()
            try:
                if isinstance(dense, Exception):
                    raise dense
                found = dense.detections(threshold=options.threshold,
                                         nms_iou=options.nms_iou, nms_mode=options.nms_mode,
                                         background=options.background) \
                    if dense.geometry else []
                if picture:
                    dense.save_picture(picture, options.cls, found,
                                       side_by_side=options.side_by_side)
            except IMAGE_ERRORS as error:
                echo(image_error(image, error), bar, sys.stderr)
                failures += 1
                continue
            if not options.quiet:
                echo(format_dense(image, dense, found,
                                  grid=options.grid or _small(dense.shape)), bar)
                if picture:
                    echo(f"wrote {picture}", bar)
            records += [{"image": image, **d.record()} for d in found]
    _write_records(options, records)
    if len(images) > 1:
        print(f"{len(images) - failures} of {len(images)} images processed"
              + (f", {failures} failed" if failures else ""))
    return 1 if failures else 0


# The largest map whose argmax grid is printed unasked (--grid): a screen's
# worth; a larger one floods the terminal with numbers no one reads.
GRID_CELLS = (32, 32)


def _small(shape: Tuple[int, int]) -> bool:
    return shape[0] <= GRID_CELLS[0] and shape[1] <= GRID_CELLS[1]


def _write_records(options: DenseOptions, records: List[dict]) -> None:
    if options.json:
        write_text(options.json, json.dumps(records, indent=1) + "\n", "--json")
    if options.csv:
        write_text(options.csv, _csv_text(records), "--csv")


def _maps_in_batches(net: Net, images: Sequence[str], pictures: Sequence, options: dict,
                     batch: int):
    """(image, picture, DenseMap or the error that stopped it), in order,
    the images run `batch` at a time."""
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        yield from zip(chunk, pictures[start:start + batch], _dense_maps(net, chunk, options))


# What fails one image, not the run. MemoryError: an allocation the memory
# limit's checks did not foresee (MemoryLimitError, a ShapeError, is refused
# before); what it was meant for is gone when it is raised, so the next
# image can still run.
IMAGE_ERRORS = (SurgeryError, OSError, ValueError, MemoryError)


def _dense_maps(net: Net, images: Sequence[str], options: dict) -> list:
    """Each image's DenseMap, or the error that stopped it, in order. The
    images go to dense_forward together, which runs those of one size as a
    batch (fc-conv weights read once per batch); if that fails, each runs
    alone, so only a bad image fails (the others of its batch run again)."""
    if len(images) > 1:
        try:
            return dense_forward(net, list(images), **options)
        except IMAGE_ERRORS:
            pass
    maps = []
    for image in images:
        try:
            maps.append(dense_forward(net, image, **options))
        except IMAGE_ERRORS as error:
            maps.append(error)
    return maps


def _tile_argument(values: Optional[List[int]]):
    if values is None:
        return None
    if len(values) not in (1, 2):
        raise UsageError("--tile needs one size or H,W")
    return values[0] if len(values) == 1 else tuple(values)


def _dense_to_folder(options: DenseOptions, net: Net, reports: List[Any]) -> int:
    """One map and one record per image into --out, on Dask (dask_batch.py);
    then --json, --csv and the pictures from the results there. The reports
    come after the run, which may still refuse the folder as a usage error."""
    from .dask_batch import dense_images
    summary = dense_images(options.prototxt, options.weights, options.images, options.out,
                           scheduler=options.scheduler, workers=options.workers,
                           map_suffix="." + options.map_format, threshold=options.threshold,
                           nms_iou=options.nms_iou, nms_mode=options.nms_mode,
                           background=options.background,
                           progress=wants_progress(options.quiet),
                           convolution=options.convolution,
                           overwrite=options.overwrite, preprocess=options.preprocess,
                           labels=options.labels, window=options.window, tile=options.tile,
                           stride=options.stride)
    _print_reports(options, reports)
    print(summary)
    failures = _outputs_of_results(options, net, summary.results)
    return 1 if summary.failed or failures else 0


def _outputs_of_results(options: DenseOptions, net: Net, results: dict) -> int:
    """--json, --csv and the pictures of the images finished in --out (now
    or by an earlier run), read back from their records and maps: the
    number of pictures that failed."""
    from .dask_batch import read_record
    records, failures = [], 0
    channels = net.declared_input_shapes()[net.inputs[0]][1]
    geo = geometry(net, None, options.window)
    for image, picture in zip(options.images, options.pictures):
        paths = results.get(os.path.abspath(image))
        if paths is None:
            continue  # failed: the summary says why
        found = read_record(paths[1])["detections"]
        records += [{"image": image, **d} for d in found]
        if picture:
            try:
                scores, _ = load_map(paths[0])
                dense = DenseMap(net, open_source(image, channels).array, scores, geo, {},
                                 options.labels)
                dense.save_picture(picture, options.cls, [Detection.from_record(d)
                                                          for d in found],
                                   side_by_side=options.side_by_side)
            except IMAGE_ERRORS as error:
                print(image_error(image, error), file=sys.stderr)
                failures += 1
                continue
            if not options.quiet:
                print(f"wrote {picture}")
    _write_records(options, records)
    return failures


COLUMNS = ["image", "class", "label", "score", "x0", "y0", "x1", "y1", "row", "column"]


# A text cell a spreadsheet would take for a formula (OWASP's CSV injection
# list); a number written as text, such as -3, is not one.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value):
    """`value` as a CSV cell no spreadsheet runs: text that would start a
    formula gets a leading quote, as OWASP recommends."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) \
            and not NUMBER.fullmatch(value):
        return "'" + value
    return value


def _csv_text(records) -> str:
    import io
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: csv_cell(value) for key, value in record.items()}
                     for record in records)
    return out.getvalue()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("caffe-surgery")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _demo_command(commands) -> None:
    """caffe-surgery demo: the quick start."""
    demo_command = commands.add_parser(
        "demo", help="train a digit classifier (once), convert it, read digits off a canvas")
    demo_command.add_argument("--png", default="dense_digits.png",
                              help="where to write the picture (default dense_digits.png)")
    demo_command.add_argument("--stride", type=positive_int, metavar="PIXELS",
                              help="also rarefy the net to this output stride (2 or 1) and "
                                   "draw both maps side by side")
    demo_command.add_argument("--stride-png", default="dense_digits_strides.png",
                              help="where to write that picture "
                                   "(default dense_digits_strides.png)")
    demo_command.set_defaults(run=lambda args: demo.run(
        png=args.png, stride=args.stride, stride_png=args.stride_png) and 0)


def _info_command(commands) -> None:
    """caffe-surgery info: a net's layers."""
    info = commands.add_parser("info", help="list a net's layers and parameter shapes")
    info.add_argument("prototxt", help="net definition (text prototxt)")
    info.add_argument("weights", nargs="?", help="caffemodel (optional)")
    info.set_defaults(run=_info)


def _convert_command(commands) -> None:
    """caffe-surgery convert: a classifier made fully convolutional."""
    convert = commands.add_parser("convert", help="make a classifier fully convolutional")
    convert.add_argument("prototxt", help="deploy prototxt")
    convert.add_argument("weights", nargs="?", help="caffemodel (omit to convert the definition)")
    convert.add_argument("-o", "--output", required=True, help="output folder (made if missing)")
    convert.add_argument("--suffix", default="-conv",
                         help="appended to converted layer names (default -conv)")
    convert.add_argument("--keep-names", action="store_true", help="do not rename layers")
    convert.add_argument("--input-shape", type=numbers(int), metavar="N,C,H,W",
                         help="input shape at which kernels are measured (default: declared)")
    convert.add_argument("--stride", type=positive_int, metavar="PIXELS",
                         help="output stride wanted: the converted net is rarefied to answer "
                              "every PIXELS pixels (a divisor of its stride; exact)")
    convert.set_defaults(run=_convert)


def _export_command(commands) -> None:
    """caffe-surgery export: a net as an ONNX file."""
    export = commands.add_parser(
        "export", help="write a net (converted or not) as an ONNX model",
        description="Write the net as an ONNX model (opset 18) that ONNX Runtime and other "
                    "ONNX runtimes run. A net without InnerProduct, Flatten or Reshape "
                    "layers (a converted one) gets symbolic height and width: the file runs "
                    "at any size. A layer ONNX cannot express is refused by name before "
                    "anything is written.")
    export.add_argument("prototxt", help="deploy prototxt")
    export.add_argument("weights", help="caffemodel")
    export.add_argument("output", help="the ONNX file to write (replaced whole, if there)")
    export.add_argument("--outputs", type=lambda text: text.split(","), metavar="BLOB[,BLOB]",
                        help="blobs the model outputs (default: the net's outputs)")
    export.set_defaults(run=_export)


def _preprocessing_arguments(dense: Parser) -> None:
    """How each image becomes the net's input (surgery.Preprocess)."""
    dense.add_argument("--preset", choices=tuple(PRESETS),
                       help="the mean, channel order and scale a model zoo family was "
                            "trained with (surgery.presets says where each comes from); "
                            "the options below replace its values")
    dense.add_argument("--mean", type=mean_argument,
                       help="per-channel values like 104,117,123, or a mean file "
                            "(.npy, or Caffe's .binaryproto)")
    dense.add_argument("--channel-swap", type=numbers(int), metavar="ORDER",
                       help="e.g. 2,1,0 for RGB images into a BGR net")
    dense.add_argument("--raw-scale", type=finite_number,
                       help="multiply the [0, 1] image by this, e.g. 255 for a net trained on 0-255")
    dense.add_argument("--input-scale", type=finite_number,
                       help="multiply after the mean is subtracted")
    dense.add_argument("--size", type=numbers(int), metavar="H,W",
                       help="resize each image to H,W first")


def _map_arguments(dense: Parser) -> None:
    """Which map is made: its window, its stride, its class names."""
    dense.add_argument("--window", type=numbers(int, 2), metavar="H,W",
                       help="the window a cell stands for (default: from the net, see the docs' "
                            "Surgery and geometry page)")
    dense.add_argument("--stride", type=positive_int, metavar="PIXELS",
                       help="answer every PIXELS pixels: the net is rarefied first (a divisor "
                            "of its output stride; exact shift-and-stitch in one forward)")
    dense.add_argument("--labels", help="class names, one per line (count must match)")


def _detection_arguments(dense: Parser) -> None:
    """What is found in each map, and where it is written."""
    dense.add_argument("--threshold", type=finite_number, default=0.5,
                       help="smallest score a detection needs (default 0.5)")
    dense.add_argument("--nms", choices=NMS_MODES, default="class",
                       help="non-maximum suppression among the boxes of one class (class, "
                            "the default, as most detectors: an object is never hidden by a "
                            "neighbour of another class) or among all boxes (global: one "
                            "box per object even where neighbouring cells name it "
                            "differently, but a real object overlapped by a stronger one of "
                            "another class is lost)")
    dense.add_argument("--nms-iou", type=unit_interval, default=0.3, metavar="IOU",
                       help="of two boxes overlapping more than this (intersection over "
                            "union), only the better is kept (default 0.3)")
    dense.add_argument("--background", type=numbers(int), metavar="CLASSES",
                       help="class indices that mean 'nothing here' (never detected)")
    dense.add_argument("--json", metavar="PATH", help="write every detection as JSON")
    dense.add_argument("--csv", metavar="PATH", help="write every detection as CSV")
    dense.add_argument("--picture", "--png", metavar="PATH",
                       help="draw the map over each image, with the detections: a .png or "
                            ".jpg file (several images: NAME-<image stem>.png), or a folder "
                            "(<image stem>.png in it)")
    dense.add_argument("--class", dest="cls", metavar="CLASS",
                       help="class whose map is drawn (index or label; default: the best "
                            "detection's, else the image's top class)")
    dense.add_argument("--side-by-side", action="store_true",
                       help="draw the map beside the image instead of over it")


def _output_arguments(dense: Parser) -> None:
    """What is printed."""
    dense.add_argument("--grid", action="store_true",
                       help="print each map's best class per cell (printed unasked only for "
                            f"maps up to {GRID_CELLS[0]}x{GRID_CELLS[1]} cells)")
    dense.add_argument("-q", "--quiet", action="store_true",
                       help="print only errors and a batch's summary: no progress bar, no "
                            "report of the conversion, no text per image (use --json, --csv, "
                            "--picture or --out for the results)")


def _run_arguments(dense: Parser) -> None:
    """How the images run: in tiles, in batches, on Dask, with which kernels."""
    dense.add_argument("--tile", type=numbers(int, 2), metavar="H,W",
                       help="run each image in tiles of this many pixels; the map equals the "
                            "whole-image one (default: tiles only where the whole image "
                            "exceeds the memory limit)")
    dense.add_argument("--batch-size", type=positive_int, default=8, metavar="N",
                       help="images of one size run as one forward, up to N (default 8; "
                            "their maps are held together); 1: one by one. With --tile, "
                            "one by one")
    dense.add_argument("--out", metavar="FOLDER",
                       help="write each image's results into FOLDER/<image file "
                            "name>.result/ (map.npy or map.zarr, geometry beside; "
                            "record.json: detections), on Dask; images finished there by an "
                            "earlier run with the same model, settings and image are reused, "
                            "results of another refuse the run (see --overwrite); --json, "
                            "--csv and --picture are then made from the results there")
    dense.add_argument("--overwrite", action="store_true",
                       help="with --out: redo the images whose results there come from "
                            "another model, settings or image (default: refuse the run)")
    dense.add_argument("--workers", type=positive_int, metavar="N",
                       help="with --out: worker processes of the embedded Dask cluster "
                            "(default: one per core)")
    dense.add_argument("--scheduler", metavar="ADDRESS", type=scheduler_argument,
                       help="with --out: run on the Dask cluster at ADDRESS "
                            "(e.g. tcp://10.0.0.5:8786, or a scheduler file) instead; it must "
                            "be trusted: Dask moves tasks and results with pickle")
    dense.add_argument("--convolution", choices=("caffe", "winograd", "onednn", "fastest"),
                       default="caffe",
                       help="how convolutions compute on the CPU: caffe (default: what Caffe's "
                            "own Net computes on this libcaffe, bit for bit), winograd (3x3 to "
                            "7x7 kernels at stride 1 with fewer multiplications: faster, within "
                            "4e-5 of the exact sum relative to each layer's output scale; "
                            "transformed weights take up to 4x their memory), onednn (every "
                            "convolution by oneDNN's kernels, within 1e-5 of caffe's; packed "
                            "weights take their size again) or fastest (each layer by whichever "
                            "of the three measured fastest on it at the first image of a size)")
    dense.add_argument("--map-format", choices=("npy", "zarr"), default="npy",
                       help="with --out: how maps are stored (default npy)")


def _dense_command(commands) -> None:
    """caffe-surgery dense: maps, detections, pictures of images."""
    dense = commands.add_parser(
        "dense", help="classify every window of large images at once; detect, draw, export",
        description="Runs the net once per image and reports its map, its detections and "
                    "the classes detected. Folders and globs expand to images.")
    dense.add_argument("prototxt", help="net definition; converted on the fly if it still "
                                        "has InnerProduct layers")
    dense.add_argument("weights", help="caffemodel")
    dense.add_argument("images", nargs="+", help="image files, folders of images, or globs")
    for add in (_preprocessing_arguments, _map_arguments, _detection_arguments,
                _output_arguments, _run_arguments):
        add(dense)
    dense.set_defaults(run=_dense)


def _finetune_command(commands) -> None:
    """caffe-surgery finetune: a classifier trained densely into a detector."""
    tune = commands.add_parser(
        "finetune", help="train a classifier on every window of boxed images (a detector)",
        description="Converts the net, builds its loss map from the boxes and trains it with "
                    "libcaffe's solver; writes OUT/deploy.prototxt, OUT/weights.caffemodel, "
                    "OUT/labels.txt, OUT/log.csv and OUT/log.png, snapshots in OUT/snapshots.")
    tune.add_argument("prototxt", help="deploy prototxt (a classifier or a converted net)")
    tune.add_argument("weights", help="caffemodel")
    tune.add_argument("images", nargs="+", help="training images (folders and globs expand)")
    tune.add_argument("--boxes", required=True, help="their boxes: CSV "
                      "(image,x0,y0,x1,y1,label) or COCO JSON")
    tune.add_argument("--out", required=True, help="output folder (made if missing)")
    tune.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    tune.add_argument("--labels", help="the net's class names, one per line")
    tune.add_argument("--val", help="held-out boxes (naming their images): AP@0.5 scored "
                                    "every --val-every iterations, best weights kept")
    tune.add_argument("--val-every", type=positive_int, default=100, metavar="N",
                      help="default 100")
    tune.add_argument("--iterations", type=int, default=400, metavar="N",
                      help="solver iterations in all, one crop each (default 400)")
    tune.add_argument("--solver", choices=("sgd", "adam"), default="sgd",
                      help="libcaffe's solver: SGD with momentum 0.9 (default) or Adam")
    tune.add_argument("--lr", type=finite_number, help="base rate (default 0.001 SGD, "
                                                       "0.0001 Adam)")
    tune.add_argument("--freeze", type=int, metavar="K", help="keep the first K layers with "
                      "weights as they are (default: all but the last two)")
    tune.add_argument("--stride", type=positive_int, metavar="PIXELS",
                      help="output stride --val scores the detector at (rarefied, exact)")
    tune.add_argument("--crop", type=numbers(int, 2), metavar="H,W",
                      help="training crop (default: the smallest image less a stride, so "
                           "that crops start at every phase of it)")
    tune.add_argument("--background-ratio", type=finite_number, metavar="R",
                      help="at most R background cells per object cell in each crop")
    tune.add_argument("--snapshot-every", type=positive_int, default=200, metavar="N",
                      help="default 200; Ctrl-C snapshots too")
    tune.add_argument("--resume", action="store_true", help="go on from OUT's last snapshot")
    tune.add_argument("--seed", type=int, default=0, help="of crops and new head rows")
    _preprocessing_arguments(tune)
    tune.set_defaults(run=_finetune)


def _finetune(args: argparse.Namespace) -> int:
    mean = load_mean(args.mean) if isinstance(args.mean, str) else args.mean
    result = finetune(
        args.prototxt, args.weights, expand_images(args.images), args.boxes, args.out,
        labels=args.labels, iterations=args.iterations, val=args.val, val_every=args.val_every,
        solver=args.solver, base_lr=args.lr, freeze=args.freeze, stride=args.stride,
        crop=tuple(args.crop) if args.crop else None, background_ratio=args.background_ratio,
        snapshot_every=args.snapshot_every, resume=args.resume, seed=args.seed,
        preprocess=Preprocess(mean=mean, channel_swap=args.channel_swap,
                              raw_scale=args.raw_scale, input_scale=args.input_scale,
                              size=args.size),
        progress=wants_progress(args.quiet))
    for when, ap in (("before", result.ap_before), ("after", result.ap_after)):
        if ap is not None:
            print(f"validation AP@0.5 {when}: {ap.ap:.3f} ({ap.true} true, {ap.false} false "
                  f"detections of {ap.boxes} boxes)")
    print(f"{result.iterations} iterations in {result.seconds:.0f} s: {result.deploy}, "
          f"{result.weights}, {result.labels}")
    return 0


def parser() -> Parser:
    top = Parser(prog=PROG, description=__doc__,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_demo_command, _info_command, _convert_command, _dense_command,
                _finetune_command, _export_command):
        add(commands)
    return top


def _warnings_once():
    """A warnings.showwarning that prints each warning once per run, on one
    line as the errors are. (Python's "once" filter forgets what it has
    shown whenever a catch_warnings block ends, as the image reader's do.)"""
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = f"{PROG}: warning: {one_line(message)}"
        if text not in seen:
            seen.add(text)
            print(text, file=sys.stderr)
    return show


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            for category in (PreprocessingWarning, NumericWarning):
                warnings.simplefilter("always", category)
            warnings.showwarning = _warnings_once()
            return int(args.run(args) or 0)
    except (UsageError, SurgeryError, OSError) as error:
        print(f"{PROG}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
