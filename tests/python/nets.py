"""Building test models: random weights for real architectures, tiny nets."""

import numpy as np

import surgery


def randomize(net, seed=0):
    """Fill every param with random values that keep activations sane.

    BatchNorm gets positive variances and a scale factor of 1, so the
    random net computes finite numbers of ordinary size.
    """
    rng = np.random.default_rng(seed)
    for name, blobs in net.params.items():
        layer = next(layer for layer in net.layers if layer.name == name)
        if layer.type == "BatchNorm":
            blobs[0][...] = rng.standard_normal(blobs[0].shape) * 0.1
            blobs[1][...] = rng.uniform(0.5, 1.5, blobs[1].shape)
            blobs[2][...] = 1
            continue
        for blob in blobs:
            fan_in = max(1, int(np.prod(blob.shape[1:]))) if blob.ndim > 1 else 1
            scale = np.sqrt(2.0 / fan_in) if blob.ndim > 1 else 0.01
            blob[...] = rng.standard_normal(blob.shape, dtype=np.float32) * scale


def random_model(prototxt, folder, seed=0):
    """Save (prototxt, caffemodel) with random weights; return their paths."""
    net = surgery.Net(prototxt)
    randomize(net, seed)
    out_proto, out_model = folder / "model.prototxt", folder / "model.caffemodel"
    net.save(out_proto, out_model)
    return out_proto, out_model


def with_input(prototxt_text, shape):
    """A net definition text with an Input layer of `shape` prepended."""
    dims = " ".join(f"dim: {d}" for d in shape)
    return (f'layer {{ name: "data" type: "Input" top: "data" '
            f'input_param {{ shape {{ {dims} }} }} }}\n' + prototxt_text)
