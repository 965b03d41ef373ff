#include "surgery/kernels/winograd_transform.hpp"

#include <stdexcept>

namespace surgery {
namespace {

// Small integers and halves: their powers are exact in float, and the
// transforms' entries stay small, which keeps the rounding error low.
constexpr double kPoints[] = {0, 1, -1, 2, -2, -0.5, 0.5};

// Coefficients (lowest power first) of the product of (x - p) over `roots`.
std::vector<double> monic_from_roots(const std::vector<double>& roots) {
  std::vector<double> c = {1};
  for (const double p : roots) {
    std::vector<double> next(c.size() + 1, 0.0);
    for (size_t k = 0; k < c.size(); ++k) {
      next[k + 1] += c[k];
      next[k] -= p * c[k];
    }
    c = next;
  }
  return c;
}

double power(double x, int n) {
  double y = 1;
  for (int i = 0; i < n; ++i) y *= x;
  return y;
}

}  // namespace

// Linear convolution s = g * h (lengths r and m) by evaluation at the points
// and interpolation: s = B [(G g) . (A h)], where A and G evaluate h and g
// at each finite point (G also divides by N_j = prod_{l != j} (p_j - p_l)),
// the row at infinity takes the leading coefficients, and column j of B
// holds the coefficients of M_j(x) = prod_{l != j} (x - p_l) (the last
// column, for infinity, those of prod_l (x - p_l)). Correlation is the
// transposed algorithm: y = A^T [(G g) . (B^T d)].
WinogradTransform cook_toom(int m, int r) {
  const int alpha = m + r - 1;
  const int finite = alpha - 1;
  if (m < 1 || r < 1 || finite > static_cast<int>(sizeof(kPoints) / sizeof(kPoints[0]))) {
    throw std::invalid_argument("cook_toom: no points for this tile size");
  }
  WinogradTransform t;
  t.m = m;
  t.r = r;
  t.alpha = alpha;
  t.at.assign(m * alpha, 0.0f);
  t.g.assign(alpha * r, 0.0f);
  t.bt.assign(alpha * alpha, 0.0f);
  std::vector<double> all(kPoints, kPoints + finite);
  for (int j = 0; j < finite; ++j) {
    std::vector<double> others;
    double n = 1;
    for (int l = 0; l < finite; ++l) {
      if (l == j) continue;
      others.push_back(all[l]);
      n *= all[j] - all[l];
    }
    for (int i = 0; i < m; ++i) t.at[i * alpha + j] = static_cast<float>(power(all[j], i));
    for (int k = 0; k < r; ++k) t.g[j * r + k] = static_cast<float>(power(all[j], k) / n);
    const auto mj = monic_from_roots(others);
    for (size_t k = 0; k < mj.size(); ++k) t.bt[j * alpha + k] = static_cast<float>(mj[k]);
  }
  t.at[(m - 1) * alpha + finite] = 1;
  t.g[finite * r + r - 1] = 1;
  const auto whole = monic_from_roots(all);
  for (size_t k = 0; k < whole.size(); ++k) t.bt[finite * alpha + k] = static_cast<float>(whole[k]);
  return t;
}

const WinogradTransform* winograd_transform(int kernel) {
  // m chosen per kernel so alpha stays at most 8 (see the header); for 6 and
  // 7 (an InnerProduct turned convolution, whose maps are small) m = 2.
  static const WinogradTransform f43 = cook_toom(4, 3), f45 = cook_toom(4, 5),
                                 f26 = cook_toom(2, 6), f27 = cook_toom(2, 7);
  switch (kernel) {
    case 3: return &f43;
    case 5: return &f45;
    case 6: return &f26;
    case 7: return &f27;
    default: return nullptr;
  }
}

}  // namespace surgery
