"""The pycaffe face's cost: CaffeNet (random weights), converted, one 451x451
image, forward through ``surgery.pycaffe.Net`` beside ``surgery.Net.forward``
on the same files, one timed call of each per round in turn (so that load
on a shared machine falls on both alike), medians.

    .venv/bin/python benchmarks/pycaffe_face.py [--repeat 30] [--gpu]

Both give the input as an array and read the map back: the face copies the
input into its blob (pycaffe's forward(data=x)) and returns views,
surgery.Net copies in and returns a copy. The rows' ratio is the face's
overhead; the goal is within 3%.
"""

import argparse
import pathlib
import tempfile

import numpy as np

import surgery
import surgery.pycaffe as caffe
from dense import alternating_ms
from surgery.testing import fixtures, random_model


def converted_caffenet(folder):
    """CaffeNet with random weights, fully convolutional, saved in `folder`."""
    proto, model = random_model(fixtures() / "bvlc_reference_caffenet" / "deploy.prototxt",
                                folder, seed=1)
    out = folder / "fc.prototxt", folder / "fc.caffemodel"
    surgery.fully_convolutionalize(proto, model, *out)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--gpu", action="store_true", help="both in Caffe's GPU mode")
    args = parser.parse_args()
    if args.gpu:
        surgery.set_mode("gpu")
        caffe.set_mode_gpu()
    with tempfile.TemporaryDirectory() as scratch:
        proto, model = converted_caffenet(pathlib.Path(scratch))
        ours = surgery.Net(proto, model)
        face = caffe.Net(str(proto), str(model), caffe.TEST)
    x = np.random.default_rng(0).standard_normal((1, 3, 451, 451), dtype=np.float32)
    ours.reshape(data=x.shape)
    face.blobs["data"].reshape(*x.shape)
    face.reshape()
    np.testing.assert_allclose(face.forward(data=x)["prob"], ours.forward(data=x)["prob"],
                               atol=1e-6)
    fns = {"surgery.Net.forward": lambda: ours.forward(data=x),
           "surgery.pycaffe.Net.forward": lambda: face.forward(data=x)}
    medians = alternating_ms(fns, args.repeat, rounds=args.repeat)
    device = "GPU" if args.gpu else f"CPU, {surgery.num_threads()} threads"
    print(f"CaffeNet 451x451 -> 8x8 map, batch 1, {device}, median of {args.repeat}")
    for name, ms in medians.items():
        print(f"  {name:30s} {ms:8.2f} ms")
    ratio = medians["surgery.pycaffe.Net.forward"] / medians["surgery.Net.forward"]
    print(f"  face / surgery.Net            {ratio:8.3f}")


if __name__ == "__main__":
    main()
