"""The ``caffe-surgery`` command."""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import List, Optional

from . import demo
from .convert import fully_convolutionalize
from .errors import SurgeryError
from .net import Net


def _info(args: argparse.Namespace) -> None:
    net = Net(args.prototxt, args.weights)
    print(repr(net))
    for layer in net.layers:
        params = net.params.get(layer.name, [])
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


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="caffe-surgery", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the bundled demo").set_defaults(
        run=lambda args: demo.run())
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
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except SurgeryError as error:
        print(f"caffe-surgery: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
