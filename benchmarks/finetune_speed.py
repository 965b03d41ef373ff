"""Training twin of the dense benchmark: one dense fine-tuning iteration of
CaffeNet (random weights) on a 451x451 image, whose 8x8 loss map trains all
64 windows at once, against the same 64 windows as 227x227 crops on the
same solver (SGD with momentum): one crop per iteration (64 iterations) and
all 64 as one batch (one iteration). The three sides take turns (alternating
blocks, dense.py's alternating_ms), medians of --repeat runs; the ratio is the
training counterpart of "64x the output in 3x the time".

    .venv/bin/python benchmarks/finetune_speed.py [--repeat 6] [--gpu]
"""

import argparse

import numpy as np

import surgery
from surgery import _core
from surgery.loss_map import copy_weights, definition_text, train_definition
from surgery.testing import fixtures, randomize
from dense import alternating_ms

SOLVER = 'type: "SGD" base_lr: 0.001 momentum: 0.9 weight_decay: 0.0005 lr_policy: "fixed"'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=6)
    parser.add_argument("--gpu", action="store_true", help="in Caffe's GPU mode")
    args = parser.parse_args()
    if args.gpu:
        surgery.set_mode("gpu")
    rng = np.random.default_rng(0)
    original = surgery.Net(fixtures() / "bvlc_reference_caffenet" / "deploy.prototxt")
    randomize(original, seed=1)
    weights = {name: original.params[name] for name in original.params}
    converted = surgery.fully_convolutionalize(
        fixtures() / "bvlc_reference_caffenet" / "deploy.prototxt").net
    crop_deploy, dense_deploy = definition_text(original), definition_text(converted)
    renamed = {n + "-conv": weights[n] for n in ("fc6", "fc7", "fc8")}

    dense = _core.Trainer(SOLVER, train_definition(dense_deploy, (1, 3, 451, 451), (8, 8)))
    copy_weights(dense, {**weights, **renamed})
    image = rng.standard_normal((1, 3, 451, 451)).astype(np.float32)
    labels = rng.integers(0, 1000, (1, 8, 8)).astype(np.float32)

    crops = np.stack([image[0, :, 32 * i:32 * i + 227, 32 * j:32 * j + 227]
                      for i in range(8) for j in range(8)])
    single = _core.Trainer(SOLVER, train_definition(crop_deploy, (1, 3, 227, 227), ()))
    copy_weights(single, weights)
    batched = _core.Trainer(SOLVER, train_definition(crop_deploy, (64, 3, 227, 227), ()))
    copy_weights(batched, weights)
    ms = alternating_ms({
        "dense": lambda: dense.step({"data": image, "label": labels}),
        "one by one": lambda: [single.step({"data": crops[k:k + 1],
                                            "label": labels.reshape(-1)[k:k + 1]})
                               for k in range(64)],
        "batch": lambda: batched.step({"data": crops, "label": labels.reshape(-1)}),
    }, args.repeat)
    dense_s, one_by_one, batch_s = (ms[k] / 1000 for k in ("dense", "one by one", "batch"))
    print(f"CaffeNet training, {surgery.mode()} mode, {surgery.num_threads()} threads")
    print(f"  dense 451x451, 64 windows, 1 iteration   {dense_s * 1000:9.1f} ms")
    print(f"  64 crops 227x227, 64 iterations           {one_by_one * 1000:9.1f} ms  "
          f"({one_by_one / dense_s:.1f}x the dense time)")
    print(f"  64 crops 227x227, one batch of 64         {batch_s * 1000:9.1f} ms  "
          f"({batch_s / dense_s:.1f}x the dense time)")


if __name__ == "__main__":
    main()
