// Winograd's minimal filtering F(m x m, r x r) (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2016): an m x m block of a
// stride-1 correlation with an r x r kernel, from an alpha x alpha input
// tile (alpha = m + r - 1), as
//
//   Y = A^T [ (G g G^T) . (B^T d B) ] A      (. the elementwise product)
//
// with alpha^2 multiplications instead of m^2 r^2. The matrices come from
// the Cook-Toom construction on the points 0, 1, -1, 2, -2, -1/2, 1/2 (the
// first alpha - 1 of them) and infinity, computed in double and rounded to
// float once. Larger tiles save more multiplications but lose accuracy as
// the points grow; alpha stays at most 8, where a tile's float result stays
// within 1e-5 of the exact sum for unit inputs (tests/cpp/test_winograd.cpp)
// and a layer's within 4e-5 of its output's scale (winograd_convolution.hpp).
#ifndef SURGERY_WINOGRAD_TRANSFORM_HPP_
#define SURGERY_WINOGRAD_TRANSFORM_HPP_

#include <vector>

namespace surgery {

struct WinogradTransform {
  int m = 0, r = 0, alpha = 0;
  std::vector<float> at;  // A^T: m x alpha, row-major
  std::vector<float> g;   // G: alpha x r
  std::vector<float> bt;  // B^T: alpha x alpha
};

// The transform used for an r x r kernel: F(4, 3), F(4, 5), F(2, 6) or
// F(2, 7) (alpha 6, 8, 7, 8); nullptr for other sizes, which keep Caffe's
// im2col + GEMM.
const WinogradTransform* winograd_transform(int kernel);

// The Cook-Toom matrices for F(m, r) on the first m + r - 2 of the points
// above; m >= 1, r >= 1, m + r - 2 <= 7.
WinogradTransform cook_toom(int m, int r);

}  // namespace surgery

#endif  // SURGERY_WINOGRAD_TRANSFORM_HPP_
