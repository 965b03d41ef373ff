"""The ``caffe-surgery`` command."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from typing import List, Optional

from . import demo
from .convert import fully_convolutionalize
from .dense import dense_forward
from .errors import SurgeryError
from .net import Net
from .report import format_dense, load_labels


def _info(args: argparse.Namespace) -> None:
    net = Net(args.prototxt, args.weights)
    print(repr(net))
    params_of = net.params
    for layer in net.layers:
        params = params_of.get(layer.name, [])
        shapes = ", ".join("x".join(map(str, p.shape)) for p in params)
        print(f"  {layer.name:<16} {layer.type:<14} -> {','.join(layer.tops):<16} {shapes}")


def _convert(args: argparse.Namespace) -> None:
    out = pathlib.Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    stem = pathlib.Path(args.prototxt).stem
    out_prototxt = out / f"{stem}_full_conv.prototxt"
    out_weights = out / f"{pathlib.Path(args.weights).stem}_full_conv.caffemodel" if args.weights else None
    shape = [int(d) for d in args.input_shape.split(",")] if args.input_shape else None
    result = fully_convolutionalize(args.prototxt, args.weights, out_prototxt, out_weights,
                                    suffix=None if args.keep_names else args.suffix,
                                    input_shape=shape)
    print(result)
    print(f"wrote {out_prototxt}" + (f" and {out_weights}" if out_weights else ""))


def _numbers(text: Optional[str], kind=float):
    return None if text is None else [kind(v) for v in text.split(",")]


def _dense(args: argparse.Namespace) -> None:
    net = Net(args.prototxt, args.weights)
    if any(layer.type == "InnerProduct" for layer in net.layers):
        print(fully_convolutionalize(net), file=sys.stderr)
    labels = load_labels(args.labels) if args.labels else None
    mean = args.mean
    if mean is not None and not os.path.exists(mean):
        mean = _numbers(mean)
    progress = len(args.images) > 1 and sys.stderr.isatty()
    many = len(args.images) > 1
    for n, image in enumerate(args.images, 1):
        if progress:
            print(f"\r\033[K[{n}/{len(args.images)}] {image}", end="", file=sys.stderr, flush=True)
        dense = dense_forward(net, image, mean=mean, channel_swap=_numbers(args.channel_swap, int),
                              raw_scale=args.raw_scale, input_scale=args.input_scale,
                              size=_numbers(args.size, int), labels=labels)
        if progress:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        print(format_dense(image, dense, args.top))
        if args.png:
            png = args.png if not many else f"{os.path.splitext(args.png)[0]}-{n}.png"
            dense.save_png(png)
            print(f"wrote {png}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="caffe-surgery", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo_command = commands.add_parser(
        "demo", help="train a digit classifier (once), convert it, read digits off a canvas")
    demo_command.add_argument("--png", default="dense_digits.png", help="where to write the map")
    demo_command.set_defaults(run=lambda args: demo.run(png=args.png))
    info = commands.add_parser("info", help="list a net's layers and parameter shapes")
    info.add_argument("prototxt")
    info.add_argument("weights", nargs="?")
    info.set_defaults(run=_info)
    convert = commands.add_parser("convert", help="make a classifier fully convolutional")
    convert.add_argument("prototxt", help="deploy prototxt")
    convert.add_argument("weights", nargs="?", help="caffemodel (omit to convert the definition)")
    convert.add_argument("-o", "--output", required=True, help="output folder")
    convert.add_argument("--suffix", default="-conv", help="appended to converted layer names")
    convert.add_argument("--keep-names", action="store_true", help="do not rename layers")
    convert.add_argument("--input-shape", help="N,C,H,W at which kernels are measured")
    convert.set_defaults(run=_convert)
    dense = commands.add_parser("dense", help="classify every window of large images at once")
    dense.add_argument("prototxt")
    dense.add_argument("weights")
    dense.add_argument("images", nargs="+")
    dense.add_argument("--mean", help="a .npy mean image, or per-channel values like 104,117,123")
    dense.add_argument("--channel-swap", help="e.g. 2,1,0 for RGB images into a BGR net")
    dense.add_argument("--raw-scale", type=float, help="e.g. 255 for a net trained on 0-255")
    dense.add_argument("--input-scale", type=float)
    dense.add_argument("--size", help="H,W to resize each image to first")
    dense.add_argument("--labels", help="class names, one per line")
    dense.add_argument("--png", help="write the map beside the image (one file per image)")
    dense.add_argument("--top", type=int, default=3, help="classes to list (default 3)")
    dense.set_defaults(run=_dense)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except SurgeryError as error:
        print(f"caffe-surgery: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
