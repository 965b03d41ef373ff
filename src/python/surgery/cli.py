"""The ``caffe-surgery`` command."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import demo
from .errors import SurgeryError
from .net import Net


def _info(args: argparse.Namespace) -> None:
    net = Net(args.prototxt, args.weights)
    print(repr(net))
    for layer in net.layers:
        params = net.params.get(layer.name, [])
        shapes = ", ".join("x".join(map(str, p.shape)) for p in params)
        print(f"  {layer.name:<16} {layer.type:<14} -> {','.join(layer.tops):<16} {shapes}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="caffe-surgery", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the bundled demo").set_defaults(
        run=lambda args: demo.run())
    info = commands.add_parser("info", help="list a net's layers and parameter shapes")
    info.add_argument("prototxt")
    info.add_argument("weights", nargs="?")
    info.set_defaults(run=_info)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except SurgeryError as error:
        print(f"caffe-surgery: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
