"""The fine-tuning proof as a script: LeNet (trained on centred 28x28
digits, no background class) fine-tuned with finetune's defaults on 30
cluttered digit canvases (30 more pick the best snapshot), scored on 30
others before and after at strides 4 and 2; the run's detections.png (the
first validation canvas, before and after) is copied to --png. The same
scenario as tests/python/test_finetune.py's slow test, which asserts on it.

    .venv/bin/python benchmarks/finetune_digits.py [--png docs/finetune_digits.png]
"""

import argparse
import pathlib
import shutil
import sys
import tempfile

import surgery
from surgery.finetune import finetune, score_detector
from surgery.testing import fixtures

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "python"))
from digit_canvases import learning_sets, read_mnist  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--png", default="finetune_digits.png")
    args = parser.parse_args()
    lenet = (fixtures() / "lenet_mnist_trained" / "lenet.prototxt",
             fixtures() / "lenet_mnist_trained" / "lenet_iter_10000.caffemodel")
    with tempfile.TemporaryDirectory() as folder:
        train, val, test = learning_sets(folder, *read_mnist(fixtures() / "mnist_t10k"))
        result = finetune(*lenet, *train, pathlib.Path(folder) / "out", val=val[1])
        for stride in (4, 2):
            for when, files, names in (("before", lenet, [str(d) for d in range(10)]),
                                       ("after", (result.deploy, result.weights),
                                        result.labels)):
                ap = score_detector(*files, test[1], names, stride=stride)
                print(f"stride {stride}, {when:6s}: AP@0.5 {ap.ap:.3f} ({ap.true} true, "
                      f"{ap.false} false detections of {ap.boxes} digits)")
        print(f"{result.iterations} iterations (best at {result.best_iteration}) in "
              f"{result.seconds:.0f} s on {surgery.num_threads()} threads")
        shutil.copyfile(pathlib.Path(folder) / "out" / "detections.png", args.png)


if __name__ == "__main__":
    main()
