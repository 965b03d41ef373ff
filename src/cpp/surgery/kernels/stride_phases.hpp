// A strided convolution as a stride-1 one, so that Winograd's transforms
// (stride 1 only) can compute it: a k x k kernel at stride s reads, in each
// of its s x s phases (dy, dx), the input cells (s Y + dy, s X + dx), so it
// equals a ceil(k / s) x ceil(k / s) kernel at stride 1 over s^2 times the
// channels, one per phase, the kernel's taps past k being zero. CaffeNet's
// conv1 (11x11 at stride 4 on 3 channels) becomes 3x3 on 48: F(4, 3) does it
// with 3.4 times fewer multiplications than the direct sum.
//
// Channel c's phase (dy, dx) is channel (c s + dy) s + dx, so a group's
// channels stay side by side.
#ifndef SURGERY_STRIDE_PHASES_HPP_
#define SURGERY_STRIDE_PHASES_HPP_

#include <cstdint>

namespace surgery::winograd {

// The sizes of a strided layer and of its stride-1 phases.
struct Phases {
  int64_t stride, reach;           // reach = ceil(kernel / stride)
  int64_t pad_h, pad_w;
  int64_t channels, height, width;  // the layer's bottom, per image
  int64_t out_height, out_width;    // its top
  // The phases' input, per image: channels * stride^2 planes of
  // (out_height + reach - 1) x (out_width + reach - 1).
  int64_t phase_height() const { return out_height + reach - 1; }
  int64_t phase_width() const { return out_width + reach - 1; }
};

// g_phases[o][c'][i][j] (reach x reach) from the layer's kernels g[o][c][k][k]
// (`out` outputs of `group_in` channels): g[o][c][i s + dy][j s + dx], zero
// past the kernel.
void phase_weights(int64_t stride, int64_t kernel, int64_t reach, const float* g, int64_t out,
                   int64_t group_in, float* g_phases);

// x_phases[n][c'][Y][X] = bottom[n][c][Y s + dy - pad_h][X s + dx - pad_w],
// zero outside the image, for `num` images (on libcaffe's threads).
void phase_inputs(const Phases& p, const float* bottom, int64_t num, float* x_phases);

}  // namespace surgery::winograd

#endif  // SURGERY_STRIDE_PHASES_HPP_
