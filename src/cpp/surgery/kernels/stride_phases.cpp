#include "surgery/kernels/stride_phases.hpp"

#include <algorithm>

#include "surgery/kernels/winograd_tiles.hpp"

namespace surgery::winograd {

void phase_weights(int64_t stride, int64_t kernel, int64_t reach, const float* g, int64_t out,
                   int64_t group_in, float* g_phases) {
  const int64_t s = stride, k = kernel, r = reach;
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t c = 0; c < group_in; ++c) {
      const float* taps = g + (o * group_in + c) * k * k;
      for (int64_t dy = 0; dy < s; ++dy) {
        for (int64_t dx = 0; dx < s; ++dx) {
          float* to = g_phases + ((o * group_in + c) * s * s + dy * s + dx) * r * r;
          for (int64_t i = 0; i < r; ++i) {
            for (int64_t j = 0; j < r; ++j) {
              const int64_t y = i * s + dy, x = j * s + dx;
              to[i * r + j] = y < k && x < k ? taps[y * k + x] : 0.0f;
            }
          }
        }
      }
    }
  }
}

void phase_inputs(const Phases& p, const float* bottom, int64_t num, float* x_phases) {
  const int64_t s = p.stride, rows = p.phase_height(), cols = p.phase_width();
  // One item per row of a phase plane: (image, channel, dy, dx, Y).
  const int64_t items = num * p.channels * s * s * rows;
  in_shares(static_cast<long>(items), 64, [&](long first, long last) {
    for (long item = first; item < last; ++item) {
      const int64_t row = item % rows, plane = item / rows;
      const int64_t dx = plane % s, dy = plane / s % s, image_channel = plane / (s * s);
      float* to = x_phases + item * cols;
      const int64_t y = row * s + dy - p.pad_h;
      if (y < 0 || y >= p.height) {
        for (int64_t X = 0; X < cols; ++X) to[X] = 0.0f;
        continue;
      }
      // Columns X read x = X s + dx - pad_w; those in [0, width) are [lo, hi).
      const float* from = bottom + (image_channel * p.height + y) * p.width;
      const int64_t shift = dx - p.pad_w;
      const int64_t lo = std::min(cols, shift >= 0 ? 0 : (-shift + s - 1) / s);
      const int64_t last = p.width - 1 - shift;  // the last column x may reach, as X s
      const int64_t hi = last < 0 ? lo : std::max(lo, std::min(cols, last / s + 1));
      for (int64_t X = 0; X < lo; ++X) to[X] = 0.0f;
      for (int64_t X = lo; X < hi; ++X) to[X] = from[X * s + shift];
      for (int64_t X = hi; X < cols; ++X) to[X] = 0.0f;
    }
  });
}

}  // namespace surgery::winograd
