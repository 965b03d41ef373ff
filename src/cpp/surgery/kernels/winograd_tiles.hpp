// The vector work of a Winograd convolution (winograd_convolution.hpp):
// the tile transforms and the products between them, each on all threads
// (libcaffe's pool, threads.hpp) and, on x86-64 CPUs that have them, in
// AVX2 + FMA code. Every output is a sum in a fixed order whatever the
// thread count, so results repeat bit for bit.
//
// Tiles are alpha x alpha input cells (alpha = m + r - 1) giving m x m
// outputs, numbered through the batch: image by image, row by row.
#ifndef SURGERY_WINOGRAD_TILES_HPP_
#define SURGERY_WINOGRAD_TILES_HPP_

#include <cstdint>
#include <functional>

#include "surgery/kernels/winograd_transform.hpp"

namespace surgery::winograd {

// Tiles transformed together: one AVX register of floats per matrix entry.
// The work buffers keep a row of tiles padded to a multiple of this (the
// padding's transformed inputs are zero), so every row starts aligned.
constexpr int kLanes = 8;
// Each work buffer (transformed inputs of a block of tiles, products of a
// block of output channels) holds at most this many floats (32 MiB).
constexpr int64_t kBufferFloats = int64_t{1} << 23;

// The sizes one forward works with.
struct Plan {
  const WinogradTransform* t;
  int64_t channels, height, width;              // bottom, per image
  int64_t out_channels, out_height, out_width;  // top, per image
  int64_t group_in, group_out;                  // channels per group
  int64_t tiles_h, tiles_w;                     // per image
  int64_t pad_h, pad_w;
  // The outputs go through Caffe's ReLU (negative values become 0; NaN and
  // -0 stay): the in-place ReLU after the layer, fused into its last write.
  bool relu = false;
};

// A block of tiles: [first, first + count) of the batch's, held in the work
// buffers in rows of `stride` floats (count rounded up to kLanes).
struct Columns {
  int64_t first, count, stride;
};

// false: the baseline code even on a CPU with AVX2, and OpenBLAS's products
// (for the tests, which check both); true (the default): the CPU picks.
void allow_vector_code(bool allowed);

// Calls body(begin, end) over [0, count) on the threads, in shares of at
// least `grain` items.
void in_shares(long count, long grain, const std::function<void(long, long)>& body);

// U[group][e][o][c] = (G g G^T)[e] for every kernel g (out x group_in
// kernels of r x r; out channels, group_out to a group). With `panels`, each
// U[group][e] is in panels of panel_rows() output channels instead of rows:
// o = 8p + r, c at panel p's c * 8 + r (group_out a multiple of 8).
void transform_weights(const WinogradTransform& t, const float* g, int64_t out, int64_t group_in,
                       int64_t group_out, float* u, bool panels);

// V[e][c][j] = (B^T d B)[e] for each input channel c of group `group` and
// tile j of `cols` (d: the tile's input cells, zero outside the image).
void transform_inputs(const Plan& s, const float* bottom, int64_t group, Columns cols, float* v);

// The most tile columns products() gives libcaffe's few-columns GEMM
// (below): 256 where it has its AVX-512 kernel (recipe patch 0016), 32
// with the AVX2 one; 0 without either or with the vector code disallowed.
int64_t few_columns();

// M[e][o] = sum over c of U[e][o][c] V[e][c] for each of `cells` products
// and `outs` output channels (M[e][o], V[e][c]: rows of cols.stride tiles;
// U[e]: `u_step` floats apart, rows of k input channels). Up to
// few_columns() tile columns, libcaffe's few-columns GEMM
// (caffe::streamed_gemm, recipe patch 0012) does them: it sums chains of
// 128 channels, each added to the total, so that the rounding does not
// grow with the channel count; elsewhere OpenBLAS, which blocks its own.
// With `panels` (U as transform_weights made it with panels; outs a
// multiple of panel_rows()), always libcaffe's panels entry, whose sums are
// the same: the same bits as U in rows.
void products(int64_t cells, const float* u, int64_t u_step, const float* v, float* m,
              int64_t outs, int64_t k, int64_t stride, bool panels);

// Output channels in a panel of U where products() takes U in panels
// (libcaffe's caffe::streamed_gemm_panels, recipe patch 0018: its AVX-512
// kernel only): 8; 0 where it cannot (no AVX-512, or the vector code
// disallowed), and U stays in rows.
int64_t panel_rows();

// top = A^T M A + bias (then ReLU, if s.relu) for output channels out_first .. out_first + outs - 1
// of group `group` (M as products() leaves it); cells of tiles hanging over
// the far edge are not written.
void transform_outputs(const Plan& s, const float* m, const float* bias, int64_t group,
                       int64_t out_first, int64_t outs, Columns cols, float* top);

}  // namespace surgery::winograd

#endif  // SURGERY_WINOGRAD_TILES_HPP_
