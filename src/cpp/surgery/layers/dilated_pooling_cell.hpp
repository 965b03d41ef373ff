// One output cell of DilatedPooling, the arithmetic dilated_pooling.hpp
// describes. Both forwards call it, the CPU one (dilated_pooling.cpp) and
// the CUDA kernel (dilated_pooling.cu), so they read the same taps in the
// same order and their results cannot drift apart.
#ifndef SURGERY_DILATED_POOLING_CELL_HPP_
#define SURGERY_DILATED_POOLING_CELL_HPP_

#include <cfloat>
#include <cstdint>

#include "surgery/layers/dilated_pooling.hpp"

#ifdef __CUDACC__
#define SURGERY_HOST_DEVICE __host__ __device__
#else
#define SURGERY_HOST_DEVICE
#endif

namespace surgery {

// Cell (oh, ow) pooled from `plane`, one H x W channel of the bottom.
SURGERY_HOST_DEVICE inline float dilated_pooling_cell(const float* plane, int64_t H, int64_t W,
                                                      const PoolingAxis& h, const PoolingAxis& w,
                                                      int64_t oh, int64_t ow, bool max) {
  const int64_t h0 = oh * h.stride - h.pad, w0 = ow * w.stride - w.pad;
  int64_t taps_h = 0, taps_w = 0;  // taps inside the padded input (AVE's divisor)
  for (int64_t i = 0; i < h.kernel; ++i) {
    const int64_t y = h0 + i * h.dilation;
    if (y >= -h.pad && y < H + h.pad) ++taps_h;
  }
  for (int64_t j = 0; j < w.kernel; ++j) {
    const int64_t x = w0 + j * w.dilation;
    if (x >= -w.pad && x < W + w.pad) ++taps_w;
  }
  float best = -FLT_MAX, sum = 0;
  for (int64_t i = 0; i < h.kernel; ++i) {
    const int64_t y = h0 + i * h.dilation;
    if (y < 0 || y >= H) continue;
    for (int64_t j = 0; j < w.kernel; ++j) {
      const int64_t x = w0 + j * w.dilation;
      if (x < 0 || x >= W) continue;
      const float v = plane[y * W + x];
      best = best < v ? v : best;  // std::max's rule (a NaN tap is skipped), also on the device
      sum += v;
    }
  }
  // Reshape refuses inputs with windows that miss the input, so taps > 0; the
  // guard keeps a division by zero out of the kernel all the same.
  const int64_t taps = taps_h * taps_w;
  return max ? best : taps > 0 ? sum / static_cast<float>(taps) : 0.f;
}

}  // namespace surgery

#endif  // SURGERY_DILATED_POOLING_CELL_HPP_
