#include "surgery/kernels/winograd_tiles.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>

#include "caffe/util/math_functions.hpp"

#if __has_include("caffe/util/parallel.hpp")
#include "caffe/util/parallel.hpp"  // our recipe's patch 0009: libcaffe's own thread pool
#define SURGERY_CAFFE_PARALLEL 1
#endif
#if __has_include("caffe/util/streamed_gemm.hpp")
#include "caffe/util/streamed_gemm.hpp"  // our recipe's patches 0012, 0018: the few-columns GEMM
#define SURGERY_CAFFE_STREAMED_GEMM 1
#endif

// The tile transforms are short loops over kLanes tiles at once. On x86-64
// they are built twice, as AVX2 + FMA code and for the baseline, and the
// CPU picks (avx2() below).
#if defined(__x86_64__) && defined(__GNUC__)
#define SURGERY_X86_AVX2 1
#include <immintrin.h>
#define SURGERY_AVX2_TARGET __attribute__((target("avx2,fma")))
#endif

namespace surgery::winograd {
namespace {

// Output channels in a panel of U (transform_weights with panels): the rows
// of a step of libcaffe's panels entry.
constexpr int64_t kPanel = 8;
#ifdef SURGERY_CAFFE_STREAMED_GEMM
static_assert(kPanel == caffe::kStreamedGemmPanel);
#endif

std::atomic<bool> vector_code_allowed{true};

bool avx2() {
#ifdef SURGERY_X86_AVX2
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes && vector_code_allowed.load(std::memory_order_relaxed);
#else
  return false;
#endif
}


// Where a tile lies: its image and its top-left output cell.
struct TilePlace {
  int64_t image, row, col;
};

// The places of `lanes` tiles from tile `first` on.
void places(const Plan& s, int64_t first, int lanes, TilePlace (&at)[kLanes]) {
  const int64_t per_image = s.tiles_h * s.tiles_w;
  int64_t image = first / per_image, ty = first % per_image / s.tiles_w,
          tx = first % per_image % s.tiles_w;
  for (int l = 0; l < lanes; ++l) {
    at[l] = {image, ty * s.t->m, tx * s.t->m};
    if (++tx == s.tiles_w) {
      tx = 0;
      if (++ty == s.tiles_h) {
        ty = 0;
        ++image;
      }
    }
  }
}

// out[i][j] = sum_k sum_q left[i][k] in[k][q] left[j][q]: left (R x A)
// applied on both sides of an A x A tile, kLanes tiles at once.
template <int A, int R>
inline __attribute__((always_inline)) void both_sides(const float* left,
                                                       const float (&in)[A][A][kLanes],
                                                       float (&out)[R][R][kLanes]) {
  float half[R][A][kLanes];
  for (int i = 0; i < R; ++i) {
    for (int q = 0; q < A; ++q) {
      float acc[kLanes] = {};
      for (int k = 0; k < A; ++k) {
        const float c = left[i * A + k];
        for (int l = 0; l < kLanes; ++l) acc[l] += c * in[k][q][l];
      }
      for (int l = 0; l < kLanes; ++l) half[i][q][l] = acc[l];
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < R; ++j) {
      float acc[kLanes] = {};
      for (int q = 0; q < A; ++q) {
        const float c = left[j * A + q];
        for (int l = 0; l < kLanes; ++l) acc[l] += half[i][q][l] * c;
      }
      for (int l = 0; l < kLanes; ++l) out[i][j][l] = acc[l];
    }
  }
}

// d[k][q][l] = input cell (k, q) of tile l (zero outside the image), for
// input channel c of group `group`, one cell at a time.
template <int A>
inline __attribute__((always_inline)) void gather_tiles(const Plan& s, const float* bottom,
                                                         int64_t group, int64_t c,
                                                         const TilePlace (&at)[kLanes], int lanes,
                                                         float (&d)[A][A][kLanes]) {
  for (int k = 0; k < A; ++k)
    for (int q = 0; q < A; ++q)
      for (int l = 0; l < kLanes; ++l) d[k][q][l] = 0.0f;
  for (int l = 0; l < lanes; ++l) {
    const float* plane =
        bottom + ((at[l].image * s.channels + group * s.group_in + c) * s.height) * s.width;
    const int64_t y0 = at[l].row - s.pad_h, x0 = at[l].col - s.pad_w;
    for (int k = 0; k < A; ++k) {
      const int64_t y = y0 + k;
      if (y < 0 || y >= s.height) continue;
      const float* row = plane + y * s.width;
      for (int q = 0; q < A; ++q) {
        const int64_t x = x0 + q;
        if (x >= 0 && x < s.width) d[k][q][l] = row[x];
      }
    }
  }
}

#ifdef SURGERY_X86_AVX2
// Rows become columns: r[i][j] = old r[j][i].
SURGERY_AVX2_TARGET inline void transpose8(__m256 (&r)[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]),
               t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]),
               t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]),
               t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)),
               s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)),
               s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)),
               s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2)),
               s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)),
               s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2)),
               s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)),
               s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// both_sides, spelled in AVX2 registers: the compiler's own vector code for
// it spills when A is 7 or 8 and runs several times slower.
template <int A, int R>
SURGERY_AVX2_TARGET inline void both_sides_avx2(const float* left,
                                                const float (&in)[A][A][kLanes],
                                                float (&out)[R][R][kLanes]) {
  __m256 half[R][A];
  for (int i = 0; i < R; ++i) {
    for (int q = 0; q < A; ++q) {
      __m256 acc = _mm256_setzero_ps();
      for (int k = 0; k < A; ++k) {
        acc = _mm256_fmadd_ps(_mm256_set1_ps(left[i * A + k]), _mm256_loadu_ps(in[k][q]), acc);
      }
      half[i][q] = acc;
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < R; ++j) {
      __m256 acc = _mm256_setzero_ps();
      for (int q = 0; q < A; ++q) {
        acc = _mm256_fmadd_ps(half[i][q], _mm256_set1_ps(left[j * A + q]), acc);
      }
      _mm256_storeu_ps(out[i][j], acc);
    }
  }
}

// gather_tiles with vector loads: a tile whose rows lie inside the image
// (8 cells wide, for the load) is read a row at a time, and each row k of
// the kLanes tiles is turned by one transpose into its A columns. Tiles at
// the border go through gather_tiles' checks.
template <int A>
SURGERY_AVX2_TARGET inline void gather_tiles_avx2(const Plan& s, const float* bottom,
                                                  int64_t group, int64_t c,
                                                  const TilePlace (&at)[kLanes], int lanes,
                                                  float (&d)[A][A][kLanes]) {
  __m256 rows[A][kLanes];
  for (int l = 0; l < kLanes; ++l) {
    if (l >= lanes) {  // past the last tile: no place (at[l] is not set), zeros
      for (int k = 0; k < A; ++k) rows[k][l] = _mm256_setzero_ps();
      continue;
    }
    const float* plane =
        bottom + ((at[l].image * s.channels + group * s.group_in + c) * s.height) * s.width;
    const int64_t y0 = at[l].row - s.pad_h, x0 = at[l].col - s.pad_w;
    if (y0 >= 0 && x0 >= 0 && y0 + A <= s.height && x0 + kLanes <= s.width) {
      for (int k = 0; k < A; ++k) rows[k][l] = _mm256_loadu_ps(plane + (y0 + k) * s.width + x0);
      continue;
    }
    alignas(32) float cells[A][kLanes] = {};
    for (int k = 0; k < A; ++k) {
      const int64_t y = y0 + k;
      if (y < 0 || y >= s.height) continue;
      for (int q = 0; q < A; ++q) {
        const int64_t x = x0 + q;
        if (x >= 0 && x < s.width) cells[k][q] = plane[y * s.width + x];
      }
    }
    for (int k = 0; k < A; ++k) rows[k][l] = _mm256_load_ps(cells[k]);
  }
  for (int k = 0; k < A; ++k) {
    transpose8(rows[k]);
    for (int q = 0; q < A; ++q) _mm256_storeu_ps(d[k][q], rows[k][q]);
  }
}
#endif

// both_sides in AVX2 code (kVector) or the baseline's.
template <int A, int R, bool kVector>
inline __attribute__((always_inline)) void both_sides_for(const float* left,
                                                           const float (&in)[A][A][kLanes],
                                                           float (&out)[R][R][kLanes]) {
#ifdef SURGERY_X86_AVX2
  if constexpr (kVector) return both_sides_avx2<A, R>(left, in, out);
#endif
  both_sides<A, R>(left, in, out);
}

// V[e][c][j] = (B^T d B)[e] for input channel c of group `group` and tile
// j of `cols`, for the blocks of kLanes tiles numbered [first, last)
// (channel-major). Input cells outside the image (padding, tiles hanging
// over the far edge) read as zero.
template <int A, bool kVector>
inline __attribute__((always_inline)) void transform_inputs_of(
    const Plan& s, const float* bottom, int64_t group, Columns cols, float* v, long first,
    long last) {
  const int64_t blocks = cols.stride / kLanes;
  for (long item = first; item < last; ++item) {
    const int64_t c = item / blocks, j0 = item % blocks * kLanes;
    const int lanes = static_cast<int>(std::min<int64_t>(kLanes, cols.count - j0));
    TilePlace at[kLanes];
    places(s, cols.first + j0, lanes, at);
    float d[A][A][kLanes];
#ifdef SURGERY_X86_AVX2
    if constexpr (kVector) {
      gather_tiles_avx2<A>(s, bottom, group, c, at, lanes, d);
    } else {
      gather_tiles<A>(s, bottom, group, c, at, lanes, d);
    }
#else
    gather_tiles<A>(s, bottom, group, c, at, lanes, d);
#endif
    float out[A][A][kLanes];
    both_sides_for<A, A, kVector>(s.t->bt.data(), d, out);
    for (int e = 0; e < A * A; ++e) {
      float* to = v + (e * s.group_in + c) * cols.stride + j0;
      for (int l = 0; l < kLanes; ++l) to[l] = out[e / A][e % A][l];
    }
  }
}

// top = (A^T M A) + bias (then ReLU, if s.relu) for output channels out_first, out_first + 1, ...
// of group `group`, whose products (o counted from out_first, `outs` of
// them) `m` holds as M[e][o][j], for the blocks of kLanes tiles numbered
// [first, last) (channel-major). Cells of tiles hanging over the far edge
// are not written.
template <int A, int M, bool kVector>
inline __attribute__((always_inline)) void transform_outputs_of(
    const Plan& s, const float* m, const float* bias, int64_t group, int64_t out_first,
    int64_t outs, Columns cols, float* top, long first, long last) {
  const int64_t blocks = cols.stride / kLanes;
  for (long item = first; item < last; ++item) {
    const int64_t o = item / blocks, j0 = item % blocks * kLanes;
    const int lanes = static_cast<int>(std::min<int64_t>(kLanes, cols.count - j0));
    float products[A][A][kLanes];
    for (int e = 0; e < A * A; ++e) {
      const float* from = m + (e * outs + o) * cols.stride + j0;
      for (int l = 0; l < kLanes; ++l) products[e / A][e % A][l] = from[l];
    }
    float y[M][M][kLanes];
    both_sides_for<A, M, kVector>(s.t->at.data(), products, y);
    TilePlace at[kLanes];
    places(s, cols.first + j0, lanes, at);
    const int64_t channel = group * s.group_out + out_first + o;
    const float b = bias ? bias[channel] : 0.0f;
    // Bias and ReLU on whole rows of lanes, in loops without a condition,
    // which compile to vector code (a branch on the sign mispredicted half
    // the time: conv1 6.6 to 11 ms). std::max(x, 0) is x < 0 ? 0 : x, as
    // Caffe's ReLU (max(x, 0) + 0 * min(x, 0)) keeps NaN and -0.
    if (s.relu) {
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < M; ++j)
          for (int l = 0; l < kLanes; ++l) y[i][j][l] = std::max(y[i][j][l] + b, 0.0f);
    } else {
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < M; ++j)
          for (int l = 0; l < kLanes; ++l) y[i][j][l] += b;
    }
    for (int l = 0; l < lanes; ++l) {
      float* plane =
          top + ((at[l].image * s.out_channels + channel) * s.out_height) * s.out_width;
      for (int i = 0; i < M && at[l].row + i < s.out_height; ++i) {
        float* row = plane + (at[l].row + i) * s.out_width;
        for (int j = 0; j < M && at[l].col + j < s.out_width; ++j) row[at[l].col + j] = y[i][j][l];
      }
    }
  }
}

// U[group][e][o][c] = (G g G^T)[e] for the kernels g of output channel o
// and input channels c .. c + kLanes - 1 of its group, for the items
// (output channel, block of kLanes input channels) [first, last).
template <int R, int A, bool kVector>
inline __attribute__((always_inline)) void transform_weights_of(
    const WinogradTransform& t, const float* g, int64_t group_in, int64_t group_out, float* u,
    bool panels, long first, long last) {
  const int64_t blocks = (group_in + kLanes - 1) / kLanes;
  for (long item = first; item < last; ++item) {
    const int64_t o = item / blocks, c0 = item % blocks * kLanes;
    const int lanes = static_cast<int>(std::min<int64_t>(kLanes, group_in - c0));
    float kernels[R][R][kLanes] = {};
    for (int l = 0; l < lanes; ++l) {
      const float* kernel = g + (o * group_in + c0 + l) * R * R;
      for (int k = 0; k < R; ++k)
        for (int q = 0; q < R; ++q) kernels[k][q][l] = kernel[k * R + q];
    }
    float cells[A][A][kLanes];
    both_sides_for<R, A, kVector>(t.g.data(), kernels, cells);
    const int64_t group = o / group_out, within = o % group_out;
    for (int e = 0; e < A * A; ++e) {
      if (panels) {
        // Panel `within / kPanel`: channel c of row `within % kPanel` at c * kPanel + row.
        float* to = u + ((group * A * A + e) * group_out + within / kPanel * kPanel) * group_in +
                    c0 * kPanel + within % kPanel;
        for (int l = 0; l < lanes; ++l) to[l * kPanel] = cells[e / A][e % A][l];
      } else {
        float* to = u + ((group * A * A + e) * group_out + within) * group_in + c0;
        for (int l = 0; l < lanes; ++l) to[l] = cells[e / A][e % A][l];
      }
    }
  }
}

// Each instantiation, as vector code for this CPU (see avx2()).
#define SURGERY_TRANSFORMS(SUFFIX, TARGET, VECTOR)                                                                 \
  TARGET void transform_weights##SUFFIX(const WinogradTransform& t, const float* g,                                \
                                        int64_t group_in, int64_t group_out, float* u,                             \
                                        bool panels, long first, long last) {                                      \
    switch (t.r) {                                                                                                 \
      case 3: return transform_weights_of<3, 6, VECTOR>(t, g, group_in, group_out, u, panels, first, last);        \
      case 5: return transform_weights_of<5, 8, VECTOR>(t, g, group_in, group_out, u, panels, first, last);        \
      case 6: return transform_weights_of<6, 7, VECTOR>(t, g, group_in, group_out, u, panels, first, last);        \
      case 7: return transform_weights_of<7, 8, VECTOR>(t, g, group_in, group_out, u, panels, first, last);        \
    }                                                                                                              \
  }                                                                                                                \
  TARGET void transform_inputs##SUFFIX(const Plan& s, const float* bottom, int64_t group,                          \
                                       Columns cols, float* v, long first, long last) {                            \
    switch (s.t->alpha) {                                                                                          \
      case 6: return transform_inputs_of<6, VECTOR>(s, bottom, group, cols, v, first, last);                       \
      case 7: return transform_inputs_of<7, VECTOR>(s, bottom, group, cols, v, first, last);                       \
      case 8: return transform_inputs_of<8, VECTOR>(s, bottom, group, cols, v, first, last);                       \
    }                                                                                                              \
  }                                                                                                                \
  TARGET void transform_outputs##SUFFIX(const Plan& s, const float* m, const float* bias,                          \
                                        int64_t group, int64_t o, int64_t outs, Columns c, float* top,             \
                                        long first, long last) {                                                   \
    switch (s.t->alpha * 16 + s.t->m) {                                                                            \
      case 6 * 16 + 4: return transform_outputs_of<6, 4, VECTOR>(s, m, bias, group, o, outs, c, top, first, last); \
      case 8 * 16 + 4: return transform_outputs_of<8, 4, VECTOR>(s, m, bias, group, o, outs, c, top, first, last); \
      case 7 * 16 + 2: return transform_outputs_of<7, 2, VECTOR>(s, m, bias, group, o, outs, c, top, first, last); \
      case 8 * 16 + 2: return transform_outputs_of<8, 2, VECTOR>(s, m, bias, group, o, outs, c, top, first, last); \
    }                                                                                                              \
  }

SURGERY_TRANSFORMS(_baseline, , false)
#ifdef SURGERY_X86_AVX2
SURGERY_TRANSFORMS(_avx2, SURGERY_AVX2_TARGET, true)
#endif

void transform_inputs_of_items(const Plan& s, const float* bottom, int64_t group, Columns cols,
                               float* v, long first, long last) {
#ifdef SURGERY_X86_AVX2
  if (avx2()) return transform_inputs_avx2(s, bottom, group, cols, v, first, last);
#endif
  transform_inputs_baseline(s, bottom, group, cols, v, first, last);
}

void transform_outputs_of_items(const Plan& s, const float* m, const float* bias, int64_t group,
                                int64_t out_first, int64_t outs, Columns cols, float* top,
                                long first, long last) {
#ifdef SURGERY_X86_AVX2
  if (avx2()) {
    return transform_outputs_avx2(s, m, bias, group, out_first, outs, cols, top, first, last);
  }
#endif
  transform_outputs_baseline(s, m, bias, group, out_first, outs, cols, top, first, last);
}

}  // namespace

void allow_vector_code(bool allowed) { vector_code_allowed = allowed; }

void in_shares(long count, long grain, const std::function<void(long, long)>& body) {
#ifdef SURGERY_CAFFE_PARALLEL
  caffe::parallel_for(count, grain, body);  // the pool set_num_threads sizes (threads.hpp)
#else
  (void)grain;
  body(0, count);
#endif
}

void transform_weights(const WinogradTransform& t, const float* g, int64_t out, int64_t group_in,
                       int64_t group_out, float* u, bool panels) {
  const int64_t blocks = (group_in + kLanes - 1) / kLanes;
  in_shares(static_cast<long>(out * blocks), 16, [&](long a, long b) {
#ifdef SURGERY_X86_AVX2
    if (avx2()) return transform_weights_avx2(t, g, group_in, group_out, u, panels, a, b);
#endif
    transform_weights_baseline(t, g, group_in, group_out, u, panels, a, b);
  });
}

void transform_inputs(const Plan& s, const float* bottom, int64_t group, Columns cols, float* v) {
  in_shares(static_cast<long>(s.group_in * cols.stride / kLanes), 64, [&](long a, long b) {
    transform_inputs_of_items(s, bottom, group, cols, v, a, b);
  });
}

void transform_outputs(const Plan& s, const float* m, const float* bias, int64_t group,
                       int64_t out_first, int64_t outs, Columns cols, float* top) {
  in_shares(static_cast<long>(outs * cols.stride / kLanes), 64, [&](long a, long b) {
    transform_outputs_of_items(s, m, bias, group, out_first, outs, cols, top, a, b);
  });
}

// Up to this many tile columns the products are libcaffe's few-columns
// GEMM (caffe::streamed_gemm), above it OpenBLAS's: its packing of the
// weights costs more than it saves when each weight meets only a few tiles
// (fc6 of one image: 16). The AVX-512 kernel (patch 0016) stays ahead up to
// a few hundred: CaffeNet's conv2 to conv5 of one image (56 to 200
// columns) and fc6 of eight (128), but not conv3 of eight (392)
// (benchmarks/few_columns_gemm).
int64_t few_columns() {
#ifdef SURGERY_CAFFE_STREAMED_GEMM
  if (!avx2()) return 0;
  return caffe::streamed_gemm_kernel() == caffe::StreamedGemmKernel::kAvx512 ? 256 : 32;
#else
  return 0;
#endif
}

int64_t panel_rows() {
#ifdef SURGERY_CAFFE_STREAMED_GEMM
  if (few_columns() > 0 && caffe::streamed_gemm_kernel() == caffe::StreamedGemmKernel::kAvx512) {
    return kPanel;
  }
#endif
  return 0;
}

// M[e][o] = sum over c of U[e][o][c] V[e][c] for each of `cells` products
// (M[e][o], V[e][c]: rows of `stride` tiles; U[e]: `u_step` floats apart):
// each cell's columns and products one block, which the GEMMs read and
// write faster than rows holding every cell's (fc6's 49 products of one
// image alone: 19.5-19.9 ms that way, 16.7-17.1 this way; in CaffeNet
// every Winograd layer 8-27% faster, the same bits).
void products(int64_t cells, const float* u, int64_t u_step, const float* v, float* m,
              int64_t outs, int64_t k, int64_t stride, bool panels) {
#ifdef SURGERY_CAFFE_STREAMED_GEMM
  if (panels) {
    // The caller made U in panels because panel_rows() said they run here.
    if (!caffe::streamed_gemm_panels<float>(
            static_cast<int>(cells), static_cast<int>(outs), static_cast<int>(stride),
            static_cast<int>(k), {u, k, u_step}, {v, stride, k * stride},
            {m, stride, outs * stride})) {
      throw std::logic_error("Winograd's weights in panels, but libcaffe declined them");
    }
    return;
  }
  // It declines (false) on a CPU without AVX2: OpenBLAS below.
  if (stride <= few_columns() &&
      caffe::streamed_gemm<float>(static_cast<int>(cells), static_cast<int>(outs),
                                  static_cast<int>(stride), static_cast<int>(k), {u, k, u_step},
                                  {v, stride, k * stride}, {m, stride, outs * stride})) {
    return;
  }
#endif
  for (int64_t e = 0; e < cells; ++e) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(outs),
                static_cast<int>(stride), static_cast<int>(k), 1.0f, u + e * u_step,
                static_cast<int>(k), v + e * k * stride, static_cast<int>(stride), 0.0f,
                m + e * outs * stride, static_cast<int>(stride));
  }
}

}  // namespace surgery::winograd
