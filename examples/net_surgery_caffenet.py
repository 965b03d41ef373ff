"""Caffe's net_surgery notebook, step by step, with caffe-surgery.

For users who have the BVLC reference CaffeNet: its deploy.prototxt and
bvlc_reference_caffenet.caffemodel. The notebook edits the prototxt by hand,
loads the model twice and copies weights with numpy; here one call does it.

    python examples/net_surgery_caffenet.py deploy.prototxt \\
        bvlc_reference_caffenet.caffemodel --image cat.jpg \\
        --mean ilsvrc_2012_mean.npy --labels synset_words.txt -o out/
"""

import argparse
import pathlib

import numpy as np

import surgery


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prototxt")
    parser.add_argument("caffemodel")
    parser.add_argument("--image", required=True)
    parser.add_argument("--mean", required=True, help="ilsvrc_2012_mean.npy")
    parser.add_argument("--labels")
    parser.add_argument("-o", "--output", default=".")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.output)
    out.mkdir(parents=True, exist_ok=True)

    # 1. Cast the fully connected layers into convolutions (fc6 -> 6x6 fc6-conv ...).
    result = surgery.fully_convolutionalize(
        args.prototxt, args.caffemodel, out / "bvlc_caffenet_full_conv.prototxt",
        out / "bvlc_caffenet_full_conv.caffemodel")
    print(result)
    net = result.net

    # 2. The notebook's input: the image resized to 451x451, its Transformer
    #    settings (per-channel ImageNet mean, RGB -> BGR, [0, 1] -> [0, 255]).
    mean = np.load(args.mean).mean(1).mean(1)
    labels = surgery.load_labels(args.labels) if args.labels else None
    transformer = surgery.Preprocess(mean=mean, channel_swap=(2, 1, 0), raw_scale=255.0,
                                     size=(451, 451))
    dense = surgery.dense_forward(net, args.image, preprocess=transformer, labels=labels)

    # 3. The 8x8 classification map, as the notebook prints it.
    print(f"\n{dense.shape[0]}x{dense.shape[1]} map of best classes:")
    print(dense.argmax)
    cat = 281  # 'tabby, tabby cat', whose map the notebook plots
    print(f"\n{dense.label(cat)}: mean score {dense.scores[cat].mean():.4f}, "
          f"best cell window {tuple(dense.boxes.reshape(-1, 4)[dense.scores[cat].argmax()])}")
    dense.save_png(out / "net_surgery_cat.png", cls=cat)
    print(f"wrote {out / 'net_surgery_cat.png'}")
    return dense


if __name__ == "__main__":
    main()
