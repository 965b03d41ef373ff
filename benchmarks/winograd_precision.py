"""How far Net.convolution "winograd" rounds from the exact convolution as
the input channels grow, beside Caffe's own path ("caffe") on the same
layer.

One Convolution layer (16 outputs), standard normal weights and input, run
by surgery.Net both ways against numpy's float64 correlation of the same
values (tests/python/convolution_rounding.py); a layer's error is
max |out - exact| / max |exact|, relative to the output's scale. Each row
is the largest error over --seeds draws. Winograd's products take two
paths on AVX2 CPUs: a block of at most 32 tile columns goes through the
few-columns GEMM (libcaffe's caffe::streamed_gemm, recipe patch 0012), more
through OpenBLAS's SGEMM. 8x8 outputs always take the former;
24x24 take OpenBLAS's until the channels are so many that a 32 MiB work
buffer holds 32 tiles or fewer (4096 channels for 5x5 and 7x7).

The fit is the law error = c * sqrt(C) * 2^-24 (C input channels, 2^-24
float32's unit roundoff): the constant c as the largest error / (sqrt(C) *
2^-24) over the channel counts, and the exponent b of a least-squares fit
error ~ C^b on a log scale. With one chain of FMAs over all the channels
in the few-columns kernel (before chains of 128) Winograd fitted b = 0.40 to
0.49 and c up to 19 (8.6e-5 at 16383 channels of 5x5); Caffe's path b
below 0.13, at most 2e-6. With chains the exponent should fall near 0.

    .venv/bin/python benchmarks/winograd_precision.py [--kernels 3,5,6,7]
        [--channels 16,64,256,1024,4096,16383] [--sides 8,24] [--seeds 2]
"""

import argparse
import pathlib
import sys
import tempfile

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "python"))
from convolution_rounding import layer_errors  # noqa: E402


UNIT_ROUNDOFF = 2.0 ** -24


def fit(channels, errors):
    """(c, b): the largest error / (sqrt(C) u), and the exponent of C."""
    channels, errors = np.asarray(channels, float), np.asarray(errors)
    c = float((errors / (np.sqrt(channels) * UNIT_ROUNDOFF)).max())
    b = float(np.polyfit(np.log(channels), np.log(errors), 1)[0])
    return c, b


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    numbers = lambda text: [int(v) for v in text.split(",")]  # noqa: E731
    parser.add_argument("--kernels", type=numbers, default=[3, 5, 6, 7])
    parser.add_argument("--channels", type=numbers, default=[16, 64, 256, 1024, 4096, 16383])
    parser.add_argument("--sides", type=numbers, default=[8, 24])
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    print(f"{'kernel':>6} {'side':>4} {'channels':>8} {'caffe':>9} {'winograd':>9} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as folder:
        for kernel in args.kernels:
            for side in args.sides:
                rows = []
                for channels in args.channels:
                    worst = {"caffe": 0.0, "winograd": 0.0}
                    for seed in range(args.seeds):
                        for name, error in layer_errors(folder, channels, kernel, side,
                                                        seed).items():
                            worst[name] = max(worst[name], error)
                    rows.append((channels, worst))
                    print(f"{kernel:>6} {side:>4} {channels:>8} {worst['caffe']:9.2e} "
                          f"{worst['winograd']:9.2e} {worst['winograd'] / worst['caffe']:6.1f}",
                          flush=True)
                for name in ("caffe", "winograd"):
                    c, b = fit([r[0] for r in rows], [r[1][name] for r in rows])
                    print(f"  {name}: error <= {c:.2f} * sqrt(C) * 2^-24, grows as C^{b:.2f}")


if __name__ == "__main__":
    main()
