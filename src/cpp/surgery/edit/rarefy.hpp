// Filter rarefaction: a fully convolutional net made to answer `factor`
// times more densely, exactly (shift-and-stitch by surgery; OverFeat, FCN
// section 3.2, DeepLab's "a trous"). In place, like fully_convolutionalize.
#ifndef SURGERY_RAREFY_HPP_
#define SURGERY_RAREFY_HPP_

#include <string>
#include <vector>

#include "surgery/runtime/net.hpp"

namespace surgery {

struct RarefiedLayer {
  std::string name, old_type, new_type;
  int old_stride_h = 1, old_stride_w = 1;
  int stride_h = 1, stride_w = 1;      // after
  int dilation_h = 1, dilation_w = 1;  // after
  bool reduced = false;                // its stride was reduced (else only dilated)
};

struct RarefyReport {
  int factor = 1;
  std::vector<RarefiedLayer> layers;  // in net order; empty for factor 1
};

// Divides the net's output stride by `factor` along H and W. Walking back
// from the output, the last strided layers (Convolution, Pooling) lose
// their stride until the product of what they lost is `factor` (the
// earliest of them may keep part of its stride). Every Convolution after a
// reduced layer is dilated (and its pad scaled) by the stride removed before
// it, and every Pooling there becomes DilatedPooling (dilated_pooling.hpp),
// a layer this library registers; the weights stay in their memory. Output
// cell (i, j) then stands for the window at (i, j) * stride / factor and
// equals the original net's cell for that window wherever the original's
// zero padding is not involved: exactly the shift-and-stitch of the layers
// from the first reduced one on.
//
// Refused, with the net unchanged: a factor below 1 or one the strides do
// not take (ShapeError, listing those they take), a layer after a reduced
// one that rarefaction cannot rewrite (InnerProduct, global pooling,
// Deconvolution, anything that is not Convolution, Pooling or computed cell
// by cell), or blobs joined at different strides (NetDefinitionError, naming
// the layer).
RarefyReport rarefy(Net& net, int factor);

// The factors rarefy() takes for this net, ascending (empty if none).
std::vector<int> rarefy_factors(const Net& net);

}  // namespace surgery

#endif  // SURGERY_RAREFY_HPP_
