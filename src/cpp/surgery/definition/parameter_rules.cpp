#include "surgery/definition/parameter_rules.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <set>
#include <sstream>

#include "caffe/blob.hpp"
#include "surgery/base/shape_text.hpp"

namespace surgery {

void ParameterChecker::require(bool ok, const std::string& what) {
  if (!ok && problem_.empty()) problem_ = what;
}

void ParameterChecker::positive(uint64_t value, const std::string& field) {
  require(value >= 1 && value <= INT_MAX,
          field + " is " + std::to_string(value) + ", it must be between 1 and 2^31 - 1");
}

void ParameterChecker::at_most_int(uint64_t value, const std::string& field) {
  require(value <= INT_MAX, field + " is " + std::to_string(value) + ", it must be below 2^31");
}

void ParameterChecker::finite_positive(float value, const std::string& field) {
  std::ostringstream text;
  text << field << " is " << value << ", it must be a finite number above 0";
  require(std::isfinite(value) && value > 0, text.str());
}

int ParameterChecker::axes(int i) const {
  return i < static_cast<int>(bottom_axes.size()) ? bottom_axes[i] : kUnknownAxes;
}

void ParameterChecker::axis(int64_t value, const std::string& field, int extra) {
  const int r = axes();
  if (r == kUnknownAxes) return;
  require(value >= -(r + extra) && value < r + extra,
          field + " is " + std::to_string(value) + ", but the bottom has " + std::to_string(r) +
              " axes");
}

void ParameterChecker::axis_span(int64_t axis, int64_t num_axes, const std::string& field,
                                 int extra) {
  require(num_axes >= -1, field + " must be -1 (all) or more");
  const int r = axes();
  const int64_t start = axis >= 0 ? axis : axis + r + extra;
  const int64_t room = r == kUnknownAxes ? kMaxBlobAxes : r - start;
  require(num_axes <= std::max<int64_t>(room, 0),
          field + " is " + std::to_string(num_axes) + ", more axes than the bottom has from " +
              "its axis " + std::to_string(axis));
}

void ParameterChecker::exact_axes(int wanted, const std::string& why) {
  const int r = axes();
  if (r == kUnknownAxes) return;
  require(r == wanted, "the bottom has " + std::to_string(r) + " axes, " + why);
}

// Convolution, Deconvolution and Im2col: per axis, each of kernel, stride,
// pad and dilation is given once or once per spatial axis.
void check_convolution(ParameterChecker& c) {
  const auto& p = c.layer.convolution_param();
  if (c.layer.type() != "Im2col") c.positive(p.num_output(), "convolution_param.num_output");
  c.positive(p.group(), "convolution_param.group");
  if (p.group() >= 1) {
    c.require(p.num_output() % p.group() == 0,
              "convolution_param.num_output must be a multiple of group");
  }
  c.axis(p.axis(), "convolution_param.axis");
  int spatial = kUnknownAxes;
  if (c.axes() != kUnknownAxes && p.axis() >= -c.axes() && p.axis() < c.axes()) {
    spatial = c.axes() - (p.axis() < 0 ? p.axis() + c.axes() : p.axis()) - 1;
  }
  // Counts given more than once must agree with each other and the spatial axes.
  std::set<int> counts;
  const auto per_axis = [&](int count, const std::string& field) {
    if (count <= 1) return;
    counts.insert(count);
    if (spatial != kUnknownAxes) {
      c.require(count == spatial, field + " is given " + std::to_string(count) +
                                      " times, the bottom has " + std::to_string(spatial) +
                                      " spatial axes");
    }
  };
  std::vector<uint64_t> kernel, stride, dilation, pad;
  if (p.has_kernel_h() || p.has_kernel_w()) {
    c.require(p.has_kernel_h() && p.has_kernel_w() && p.kernel_size_size() == 0,
              "give kernel_h and kernel_w together, and not with kernel_size");
    kernel = {p.kernel_h(), p.kernel_w()};
    per_axis(2, "kernel_h/kernel_w");
  } else {
    c.require(p.kernel_size_size() > 0, "convolution_param has no kernel_size");
    kernel.assign(p.kernel_size().begin(), p.kernel_size().end());
    per_axis(p.kernel_size_size(), "convolution_param.kernel_size");
  }
  if (p.has_stride_h() || p.has_stride_w()) {
    // Caffe checks `stride` but divides by these (each defaults to 1).
    c.require(p.stride_size() == 0, "give stride_h/stride_w or stride, not both");
    stride = {p.stride_h(), p.stride_w()};
    per_axis(2, "stride_h/stride_w");
  } else {
    stride.assign(p.stride().begin(), p.stride().end());
    per_axis(p.stride_size(), "convolution_param.stride");
  }
  if (p.has_pad_h() || p.has_pad_w()) {
    c.require(p.pad_size() == 0, "give pad_h and pad_w, or pad, not both");
    pad = {p.pad_h(), p.pad_w()};
    per_axis(2, "pad_h/pad_w");
  } else {
    pad.assign(p.pad().begin(), p.pad().end());
    per_axis(p.pad_size(), "convolution_param.pad");
  }
  dilation.assign(p.dilation().begin(), p.dilation().end());
  per_axis(p.dilation_size(), "convolution_param.dilation");
  c.require(counts.size() <= 1,
            "kernel, stride, pad and dilation are given for different numbers of axes");
  for (auto k : kernel) c.positive(k, "convolution_param kernel size");
  for (auto s : stride) c.positive(s, "convolution_param stride");
  for (auto d : dilation) c.positive(d, "convolution_param.dilation");
  for (auto q : pad) c.at_most_int(q, "convolution_param pad");
  // Caffe computes dilation * (kernel - 1) + 1 + 2 * pad in int, on every
  // axis: a value given once holds for all (kernel_size once with pad_w
  // alone at 2^30 overflowed, found by the fuzz campaign).
  const auto on_axis = [](const std::vector<uint64_t>& values, size_t axis, uint64_t absent) {
    return values.empty() ? absent : values[values.size() == 1 ? 0 : axis % values.size()];
  };
  const size_t axes = std::max({kernel.size(), pad.size(), dilation.size()});
  for (size_t i = 0; i < axes; ++i) {
    const uint64_t k = on_axis(kernel, i, 1), d = on_axis(dilation, i, 1), q = on_axis(pad, i, 0);
    c.require(k == 0 || d * (k - 1) + 1 + 2 * q <= INT_MAX,
              "the dilated kernel plus its padding is more than 2^31 - 1 wide");
  }
}

void check_pooling(ParameterChecker& c) {
  const auto& p = c.layer.pooling_param();
  c.exact_axes(4, "Pooling takes 4 (N, C, H, W)");
  if (c.layer.top_size() > 1) {
    c.require(p.pool() == caffe::PoolingParameter::MAX,
              "only MAX pooling has a second top (the mask)");
  }
  uint64_t kernel_h = 0, kernel_w = 0;
  if (p.global_pooling()) {
    c.require(!p.has_kernel_size() && !p.has_kernel_h() && !p.has_kernel_w(),
              "global_pooling takes no kernel size");
  } else if (p.has_kernel_h() || p.has_kernel_w()) {
    c.require(p.has_kernel_h() && p.has_kernel_w() && !p.has_kernel_size(),
              "give kernel_h and kernel_w together, and not with kernel_size");
    kernel_h = p.kernel_h();
    kernel_w = p.kernel_w();
  } else {
    c.require(p.has_kernel_size(), "pooling_param has no kernel_size");
    kernel_h = kernel_w = p.kernel_size();
  }
  if (!p.global_pooling()) {
    c.positive(kernel_h, "pooling_param kernel height");
    c.positive(kernel_w, "pooling_param kernel width");
  }
  uint64_t stride_h = p.stride(), stride_w = p.stride();
  if (p.has_stride_h() || p.has_stride_w()) {
    c.require(p.has_stride_h() && p.has_stride_w() && !p.has_stride(),
              "give stride_h and stride_w together, and not with stride");
    stride_h = p.stride_h();
    stride_w = p.stride_w();
  }
  c.positive(stride_h, "pooling_param stride height");
  c.positive(stride_w, "pooling_param stride width");
  uint64_t pad_h = p.pad(), pad_w = p.pad();
  if (p.has_pad_h() || p.has_pad_w()) {
    c.require(p.has_pad_h() && p.has_pad_w() && !p.has_pad(),
              "give pad_h and pad_w together, and not with pad");
    pad_h = p.pad_h();
    pad_w = p.pad_w();
  }
  if (p.global_pooling()) {
    c.require(pad_h == 0 && pad_w == 0 && stride_h == 1 && stride_w == 1,
              "global_pooling takes pad 0 and stride 1");
  } else {
    c.require(pad_h < kernel_h && pad_w < kernel_w, "pooling_param pad must be below the kernel size");
  }
  if (pad_h != 0 || pad_w != 0) {
    c.require(p.pool() != caffe::PoolingParameter::STOCHASTIC,
              "STOCHASTIC pooling takes no padding");
  }
}

// DilatedPooling (dilated_pooling.hpp): Pooling's fields, MAX or AVE, one
// top, a dilation in convolution_param and nothing else there; pad may
// reach up to the dilated window's extent.
void check_dilated_pooling(ParameterChecker& c) {
  caffe::LayerParameter unpadded = c.layer;
  auto& p = *unpadded.mutable_pooling_param();
  const uint64_t pad_h = p.has_pad_h() ? p.pad_h() : p.pad();
  const uint64_t pad_w = p.has_pad_w() ? p.pad_w() : p.pad();
  c.require(!(p.has_pad() && (p.has_pad_h() || p.has_pad_w())) &&
                p.has_pad_h() == p.has_pad_w(),
            "give pad_h and pad_w together, and not with pad");
  p.clear_pad();
  p.clear_pad_h();
  p.clear_pad_w();
  ParameterChecker pooling(unpadded, c.bottom_axes);
  check_pooling(pooling);
  c.require(pooling.problem().empty(), pooling.problem());
  c.require(!p.global_pooling(), "DilatedPooling pools a fixed window; global_pooling is not for it");
  c.require(p.pool() == caffe::PoolingParameter::MAX || p.pool() == caffe::PoolingParameter::AVE,
            "DilatedPooling pools MAX or AVE");
  const auto& dilation = c.layer.convolution_param().dilation();
  c.require(dilation.size() == 1 || dilation.size() == 2,
            "DilatedPooling needs convolution_param.dilation, once or once per axis (h, w)");
  caffe::ConvolutionParameter rest = c.layer.convolution_param();
  rest.clear_dilation();
  c.require(rest.ByteSizeLong() == 0,
            "DilatedPooling reads only dilation from convolution_param; remove the other fields");
  const uint64_t kernel_h = p.has_kernel_h() ? p.kernel_h() : p.kernel_size();
  const uint64_t kernel_w = p.has_kernel_w() ? p.kernel_w() : p.kernel_size();
  for (int axis = 0; axis < 2 && !dilation.empty(); ++axis) {
    const uint64_t d = dilation.Get(dilation.size() == 1 ? 0 : axis);
    const uint64_t kernel = axis == 0 ? kernel_h : kernel_w;
    const uint64_t pad = axis == 0 ? pad_h : pad_w;
    c.positive(d, "convolution_param.dilation");
    c.at_most_int(pad, "pooling_param pad");
    // The window's extent, computed in 64 bits, must fit Caffe's int sizes.
    const uint64_t extent = d * (kernel > 0 ? kernel - 1 : 0) + 1;
    c.require(d <= INT_MAX && kernel <= INT_MAX && extent + 2 * pad <= INT_MAX,
              "the dilated window plus its padding is more than 2^31 - 1 wide");
    c.require(pad < extent, "pooling_param pad must be below the dilated window's extent");
  }
}

void check_lrn(ParameterChecker& c) {
  const auto& p = c.layer.lrn_param();
  c.exact_axes(4, "LRN takes 4 (N, C, H, W)");
  c.positive(p.local_size(), "lrn_param.local_size");
  c.require(p.local_size() % 2 == 1, "lrn_param.local_size must be odd");
}

void check_pixel_shuffle(ParameterChecker& c) {
  const auto& p = c.layer.pixelshuffle_param();
  c.exact_axes(4, "PixelShuffle takes 4 (N, C, H, W)");
  // The channels are divided by factor^2, computed in int.
  c.require(p.upscale_factor() >= 1 && p.upscale_factor() <= 46340,
            "pixelshuffle_param.upscale_factor is " + std::to_string(p.upscale_factor()) +
                ", it must be between 1 and 46340");
}

void check_upsample(ParameterChecker& c) {
  const auto& p = c.layer.upsample_param();
  c.require(p.scale() >= 1, "upsample_param.scale is " + std::to_string(p.scale()) +
                                ", it must be at least 1");
  c.require(p.dims_num() == 3 || p.dims_num() == 4,
            "upsample_param.dims_num is " + std::to_string(p.dims_num()) + ", it must be 3 or 4");
  // Forward indexes shape(0 .. dims_num - 1).
  if (p.dims_num() == 3 || p.dims_num() == 4) {
    c.exact_axes(p.dims_num(), "upsample_param.dims_num says " + std::to_string(p.dims_num()));
  }
}

void check_bilinear_interpolate(ParameterChecker& c) {
  const auto& p = c.layer.bilinear_interpolate_param();
  c.exact_axes(4, "BilinearInterpolate takes 4 (N, C, H, W)");
  const bool size = p.has_dst_h() || p.has_dst_w();
  // With both or neither, Caffe leaves the output size uninitialised.
  c.require(size != p.has_scale_factor(),
            "bilinear_interpolate_param needs dst_h/dst_w or scale_factor, exactly one of them");
  if (p.has_dst_h()) c.positive(p.dst_h() < 0 ? 0 : p.dst_h(), "bilinear_interpolate_param.dst_h");
  if (p.has_dst_w()) c.positive(p.dst_w() < 0 ? 0 : p.dst_w(), "bilinear_interpolate_param.dst_w");
  if (p.has_scale_factor()) {
    c.finite_positive(p.scale_factor(), "bilinear_interpolate_param.scale_factor");
    c.require(p.scale_factor() <= 1024, "bilinear_interpolate_param.scale_factor is above 1024");
  }
}

void check_resize(ParameterChecker& c) {
  const auto& p = c.layer.resize_param();
  c.exact_axes(4, "Resize takes 4 (N, C, H, W)");
  if (p.is_pyramid_test()) {
    c.require(p.has_out_height_scale() && p.has_out_width_scale(),
              "resize_param with is_pyramid_test needs out_height_scale and out_width_scale");
    c.finite_positive(p.out_height_scale(), "resize_param.out_height_scale");
    c.finite_positive(p.out_width_scale(), "resize_param.out_width_scale");
    c.require(p.out_height_scale() <= 1024 && p.out_width_scale() <= 1024,
              "resize_param scales above 1024");
  } else {
    c.require(p.has_height() && p.has_width(), "resize_param needs height and width");
    c.positive(p.height(), "resize_param.height");
    c.positive(p.width(), "resize_param.width");
  }
}

void check_inner_product(ParameterChecker& c) {
  const auto& p = c.layer.inner_product_param();
  c.positive(p.num_output(), "inner_product_param.num_output");
  c.axis(p.axis(), "inner_product_param.axis");
}

void check_embed(ParameterChecker& c) {
  const auto& p = c.layer.embed_param();
  c.positive(p.num_output(), "embed_param.num_output");
  c.positive(p.input_dim(), "embed_param.input_dim");
}

void check_recurrent(ParameterChecker& c) {
  c.positive(c.layer.recurrent_param().num_output(), "recurrent_param.num_output");
}

void check_scale(ParameterChecker& c) {
  const auto& p = c.layer.scale_param();
  c.axis(p.axis(), "scale_param.axis");
  c.axis_span(p.axis(), p.num_axes(), "scale_param.num_axes");
}

void check_bias(ParameterChecker& c) {
  const auto& p = c.layer.bias_param();
  c.axis(p.axis(), "bias_param.axis");
  c.axis_span(p.axis(), p.num_axes(), "bias_param.num_axes");
}

void check_eltwise(ParameterChecker& c) {
  const auto& p = c.layer.eltwise_param();
  c.require(p.coeff_size() == 0 || p.coeff_size() == c.layer.bottom_size(),
            "eltwise_param gives one coeff per bottom, or none");
  c.require(p.coeff_size() == 0 || p.operation() == caffe::EltwiseParameter::SUM,
            "eltwise_param.coeff is for SUM only");
}

void check_pad(ParameterChecker& c) {
  const auto& p = c.layer.pad_param();
  for (int32_t v : {p.pad_u(), p.pad_d(), p.pad_l(), p.pad_r()}) {
    c.require(v >= -(1 << 24) && v <= (1 << 24), "pad_param pads must be within 2^24");
  }
}

void check_concat(ParameterChecker& c) {
  const auto& p = c.layer.concat_param();
  c.require(!(p.has_axis() && p.has_concat_dim()), "give concat_param.axis or concat_dim, not both");
  if (p.has_concat_dim()) c.axis(p.concat_dim(), "concat_param.concat_dim");
  else c.axis(p.axis(), "concat_param.axis");
}

void check_slice(ParameterChecker& c) {
  const auto& p = c.layer.slice_param();
  c.require(!(p.has_axis() && p.has_slice_dim()), "give slice_param.axis or slice_dim, not both");
  if (p.has_slice_dim()) c.axis(p.slice_dim(), "slice_param.slice_dim");
  else c.axis(p.axis(), "slice_param.axis");
  if (p.slice_point_size() > 0) {
    c.require(p.slice_point_size() == c.layer.top_size() - 1,
              "slice_param gives one slice_point fewer than tops");
    for (int i = 0; i < p.slice_point_size(); ++i) {
      c.at_most_int(p.slice_point(i), "slice_param.slice_point");
      c.require(i == 0 || p.slice_point(i) > p.slice_point(i - 1),
                "slice_param.slice_point must increase");
    }
  }
}

void check_crop(ParameterChecker& c) {
  const auto& p = c.layer.crop_param();
  c.axis(p.axis(), "crop_param.axis");
  for (auto offset : p.offset()) c.at_most_int(offset, "crop_param.offset");
}

void check_flatten(ParameterChecker& c) {
  const auto& p = c.layer.flatten_param();
  c.axis(p.axis(), "flatten_param.axis");
  c.axis(p.end_axis(), "flatten_param.end_axis");
}

void check_reshape(ParameterChecker& c) {
  const auto& p = c.layer.reshape_param();
  int inferred = 0;
  for (auto dim : p.shape().dim()) {
    c.require(dim >= -1 && dim <= INT_MAX,
              "reshape_param.shape dims must be -1 (inferred), 0 (copied) or positive 32-bit");
    inferred += dim == -1;
  }
  c.require(inferred <= 1, "reshape_param.shape infers at most one dim (-1)");
  c.axis(p.axis(), "reshape_param.axis", 1);
  c.axis_span(p.axis(), p.num_axes(), "reshape_param.num_axes", 1);
}

void check_unsqueeze(ParameterChecker& c) {
  c.require(c.layer.unsqueeze_param().has_dim(), "unsqueeze_param.dim is required");
  c.axis(c.layer.unsqueeze_param().dim(), "unsqueeze_param.dim", 1);
}

void check_permute(ParameterChecker& c) {
  const auto& p = c.layer.permute_param();
  std::set<uint32_t> seen;
  for (auto axis : p.order()) {
    c.require(seen.insert(axis).second, "permute_param.order repeats an axis");
    if (c.axes() != kUnknownAxes) c.axis(axis, "permute_param.order");
  }
}

void check_tile(ParameterChecker& c) {
  const auto& p = c.layer.tile_param();
  c.axis(p.axis(), "tile_param.axis");
  c.require(p.has_tiles() && p.tiles() >= 1, "tile_param.tiles must be given and at least 1");
}

void check_reduction(ParameterChecker& c) {
  c.axis(c.layer.reduction_param().axis(), "reduction_param.axis");
}

void check_softmax(ParameterChecker& c) {
  c.axis(c.layer.softmax_param().axis(), "softmax_param.axis");
}

void check_argmax(ParameterChecker& c) {
  const auto& p = c.layer.argmax_param();
  c.positive(p.top_k(), "argmax_param.top_k");
  if (p.has_axis()) c.axis(p.axis(), "argmax_param.axis");
}

void check_accuracy(ParameterChecker& c) {
  // The per-class top counts at label positions Caffe only DCHECKs.
  c.require(c.layer.top_size() == 1,
            "the second top (per-class accuracy) writes at positions read from the label "
            "bottom without bounds checks; use one top");
  c.positive(c.layer.accuracy_param().top_k(), "accuracy_param.top_k");
  c.axis(c.layer.accuracy_param().axis(), "accuracy_param.axis");
}

void check_dropout(ParameterChecker& c) {
  const float ratio = c.layer.dropout_param().dropout_ratio();
  // Caffe only DCHECKs this (compiled out); 1 makes its scale infinite.
  c.require(ratio >= 0 && ratio < 1, "dropout_param.dropout_ratio must be in [0, 1)");
}

void check_spp(ParameterChecker& c) {
  c.exact_axes(4, "SPP takes 4 (N, C, H, W)");
  // The finest level has 2^(pyramid_height - 1) bins per side, computed in int.
  const auto height = c.layer.spp_param().pyramid_height();
  c.require(height >= 1 && height <= 16, "spp_param.pyramid_height must be between 1 and 16");
}

void check_psroi_pooling(ParameterChecker& c) {
  const auto& p = c.layer.psroi_pooling_param();
  c.finite_positive(p.spatial_scale(), "psroi_pooling_param.spatial_scale");
  c.require(p.output_dim() >= 1 && p.group_size() >= 1 && p.group_size() <= 46340,
            "psroi_pooling_param.output_dim and group_size must be positive (group_size at "
            "most 46340)");
}

void check_proposal(ParameterChecker& c) {
  const auto& p = c.layer.proposal_param();
  c.positive(p.feat_stride(), "proposal_param.feat_stride");
  c.positive(p.base_size(), "proposal_param.base_size");
  c.positive(p.pre_nms_topn(), "proposal_param.pre_nms_topn");
  c.positive(p.post_nms_topn(), "proposal_param.post_nms_topn");
  // Caffe passes &ratio[0] and &scale[0] of these, empty or not.
  c.require(p.ratio_size() > 0 && p.scale_size() > 0, "proposal_param needs a ratio and a scale");
  for (float r : p.ratio()) c.finite_positive(r, "proposal_param.ratio");
  for (float s : p.scale()) c.finite_positive(s, "proposal_param.scale");
}

void check_detection_output(ParameterChecker& c) {
  const auto& p = c.layer.detection_output_param();
  c.positive(p.num_classes(), "detection_output_param.num_classes");
  c.require(p.background_label_id() >= -1 &&
                static_cast<int64_t>(p.background_label_id()) < static_cast<int64_t>(p.num_classes()),
            "detection_output_param.background_label_id must be -1 or a class below num_classes");
  c.require(p.keep_top_k() >= -1, "detection_output_param.keep_top_k must be -1 (all) or more");
  if (p.nms_param().has_top_k()) {
    c.require(p.nms_param().top_k() >= -1, "nms_param.top_k must be -1 (all) or more");
  }
}

void check_detection_evaluate(ParameterChecker& c) {
  const auto& p = c.layer.detection_evaluate_param();
  c.positive(p.num_classes(), "detection_evaluate_param.num_classes");
  c.require(p.background_label_id() < p.num_classes(),
            "detection_evaluate_param.background_label_id must be below num_classes");
}

namespace {

// Blob sizes given in the definition: each dim a positive 32-bit size (the
// fillers divide by the first two), the count too.
void check_shape(ParameterChecker& c, const caffe::BlobShape& shape, const std::string& field) {
  for (auto dim : shape.dim()) {
    c.require(dim >= 1 && dim <= INT_MAX, field + " dims must be positive 32-bit sizes");
  }
  const auto count = element_count(shape.dim());
  c.require(count && *count <= INT_MAX, field + " holds more than 2^31 - 1 values");
}

}  // namespace

void check_dummy_data(ParameterChecker& c) {
  const auto& p = c.layer.dummy_data_param();
  for (const auto& shape : p.shape()) check_shape(c, shape, "dummy_data_param.shape");
  const auto legacy = {p.num_size(), p.channels_size(), p.height_size(), p.width_size()};
  for (int size : legacy) {
    c.require(size == 0 || size == 1 || size == c.layer.top_size(),
              "dummy_data_param gives num/channels/height/width once or once per top");
  }
  for (const auto* sizes : {&p.num(), &p.channels(), &p.height(), &p.width()}) {
    for (auto size : *sizes) c.positive(size, "dummy_data_param num/channels/height/width");
  }
  for (int i = 0; i < c.layer.top_size(); ++i) {
    const auto pick = [&](const google::protobuf::RepeatedField<uint32_t>& v) -> uint32_t {
      return v.empty() ? 1 : v.Get(v.size() == 1 ? 0 : std::min(i, v.size() - 1));
    };
    if (p.num_size() + p.channels_size() + p.height_size() + p.width_size() > 0) {
      const auto count = element_count(
          std::array<uint32_t, 4>{pick(p.num()), pick(p.channels()), pick(p.height()), pick(p.width())});
      c.require(count && *count <= INT_MAX,
                "dummy_data_param describes a blob of more than 2^31 - 1 values");
    }
  }
}

void check_parameter(ParameterChecker& c) {
  check_shape(c, c.layer.parameter_param().shape(), "parameter_param.shape");
}

void check_memory_data(ParameterChecker& c) {
  const auto& p = c.layer.memory_data_param();
  c.positive(p.batch_size(), "memory_data_param.batch_size");
  c.positive(p.channels(), "memory_data_param.channels");
  c.positive(p.height(), "memory_data_param.height");
  c.positive(p.width(), "memory_data_param.width");
  const auto count =
      element_count(std::array<uint32_t, 4>{p.batch_size(), p.channels(), p.height(), p.width()});
  c.require(count && *count <= INT_MAX,
            "memory_data_param describes a blob of more than 2^31 - 1 values");
}

}  // namespace surgery
