"""numpy definitions of Caffe's layers, the oracles of the layer tests:
Caffe's arithmetic written from its definitions (output sizes, padding,
which maximum wins), in float64 where they sum."""

import numpy as np

FLT_MAX = np.finfo(np.float32).max


def pooled_size(length, kernel, stride, pad, dilation=1, ceil=True):
    """Caffe's pooling output size: rounded up (or down), less the last
    window where it starts in the padding."""
    span = length + 2 * pad - (dilation * (kernel - 1) + 1)
    count = (-(-span // stride) if ceil else span // stride) + 1
    if pad > 0 and (count - 1) * stride >= length + pad:
        count -= 1
    return count


def numpy_convolution(x, weights, bias, stride, pad, dilation):
    """Convolution of x (N, C, H, W) with square kernels: the sum over the
    taps of each tap's weights times the zero-padded input it sees."""
    _, _, height, width = x.shape
    kernel = weights.shape[2]
    reach = dilation * (kernel - 1) + 1
    out_h = (height + 2 * pad - reach) // stride + 1
    out_w = (width + 2 * pad - reach) // stride + 1
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((x.shape[0], weights.shape[0], out_h, out_w))
    for i in range(kernel):
        for j in range(kernel):
            rows = slice(i * dilation, i * dilation + stride * (out_h - 1) + 1, stride)
            cols = slice(j * dilation, j * dilation + stride * (out_w - 1) + 1, stride)
            # tensordot is a BLAS product in float64 (einsum's loop took 37 s
            # for 16383 channels of 7x7)
            out += np.tensordot(weights[:, :, i, j], padded[:, :, rows, cols],
                                axes=(1, 1)).transpose(1, 0, 2, 3)
    return out + bias[None, :, None, None]


def numpy_max_pool(x, kernel, stride, pad):
    """Caffe's loop: the first value in the window's order (rows, then
    columns) that exceeds all before it, from -FLT_MAX; NaN never wins.
    The values and their indices in the plane."""
    n, c, height, width = x.shape
    out_h, out_w = pooled_size(height, kernel, stride, pad), pooled_size(width, kernel, stride, pad)
    values = np.empty((n, c, out_h, out_w), np.float32)
    indices = np.empty((n, c, out_h, out_w), np.int64)
    for i in range(out_h):
        for j in range(out_w):
            h0, w0 = i * stride - pad, j * stride - pad
            h1, w1 = min(h0 + kernel, height), min(w0 + kernel, width)
            h0, w0 = max(h0, 0), max(w0, 0)
            window = x[:, :, h0:h1, w0:w1].reshape(n, c, -1)
            ranked = np.where(np.isnan(window), -np.inf, window)
            first = ranked.argmax(axis=2)
            best = np.take_along_axis(ranked, first[..., None], axis=2)[..., 0]
            wins = best > -FLT_MAX
            span = w1 - w0
            values[:, :, i, j] = np.where(wins, best, -FLT_MAX)
            indices[:, :, i, j] = np.where(wins, (h0 + first // span) * width + w0 + first % span,
                                           -1)
    return values, indices


def reference_pooling(x, method, kernel, stride, pad, dilation, ceil):
    """Dilated MAX/AVE pooling of x (N, C, H, W) from the definition: window
    taps at o * stride - pad + k * dilation; Caffe's output size and its
    rule for a last window starting in the padding; AVE divides by the taps
    inside [-pad, size + pad)."""
    n, c, h, w = x.shape
    oh = pooled_size(h, kernel[0], stride[0], pad[0], dilation[0], ceil)
    ow = pooled_size(w, kernel[1], stride[1], pad[1], dilation[1], ceil)
    out = np.zeros((n, c, oh, ow), np.float64)
    for i in range(oh):
        rows = [i * stride[0] - pad[0] + k * dilation[0] for k in range(kernel[0])]
        for j in range(ow):
            cols = [j * stride[1] - pad[1] + k * dilation[1] for k in range(kernel[1])]
            inside = x[:, :, [r for r in rows if 0 <= r < h]][:, :, :, [q for q in cols if 0 <= q < w]]
            if method == "MAX":
                out[:, :, i, j] = inside.reshape(n, c, -1).max(axis=2)
            else:
                taps = (sum(-pad[0] <= r < h + pad[0] for r in rows)
                        * sum(-pad[1] <= q < w + pad[1] for q in cols))
                out[:, :, i, j] = inside.reshape(n, c, -1).sum(axis=2) / taps
    return out


def numpy_lrn(x, size, alpha, beta, k):
    """LRN across channels: x / (k + alpha / size * (sum of the squares of
    the `size` channels centred on each))^beta, zeros past the ends."""
    wide = x.astype(np.float64)
    half = (size - 1) // 2
    square = np.pad(wide * wide, ((0, 0), (half, size - 1 - half), (0, 0), (0, 0)))
    window = sum(square[:, c:c + x.shape[1]] for c in range(size))
    return wide / (k + alpha / size * window) ** beta
