#include "surgery/kernels/winograd_convolution.hpp"

#include <algorithm>
#include <climits>
#include <string>

#include "surgery/base/errors.hpp"
#include "surgery/definition/geometry.hpp"
#include "surgery/kernels/stride_phases.hpp"
#include "surgery/kernels/winograd_tiles.hpp"

namespace surgery {
namespace {

using winograd::Columns;
using winograd::kBufferFloats;
constexpr int64_t kCachedWeightBytes = int64_t{1} << 20;
// From this size a group's transformed weights go in panels where they can
// (winograd::panel_rows()): the products then read them from memory as one
// stream. CaffeNet's fc6 (205 MB) of one 451 image took 0.79-0.87x the
// time of rows in its products, of two images 0.93-0.96x; its conv2-conv5
// (1.5-21 MB, 56-200 tile columns) 0.93-1.06x, so they keep rows.
constexpr int64_t kPanelWeightBytes = int64_t{32} << 20;
constexpr int64_t kMostTiles = 256;
using winograd::kLanes;
using winograd::Plan;

}  // namespace

std::unique_ptr<WinogradConvolution> WinogradConvolution::for_layer(
    caffe::Layer<float>& layer, const caffe::Blob<float>& bottom,
    const caffe::Blob<float>& top) {
  if (!is_plain_convolution(layer, bottom, top)) return nullptr;
  const caffe::ConvolutionParameter& p = layer.layer_param().convolution_param();
  const Window h = conv_window(p, 0), w = conv_window(p, 1);
  if (h.kernel != w.kernel || h.stride != w.stride || h.dilation != 1 || w.dilation != 1 ||
      h.kernel > INT_MAX) {
    return nullptr;
  }
  // At stride s the kernel's phases are a ceil(k / s) kernel at stride 1.
  const int64_t stride = h.stride, phases = stride * stride;
  const WinogradTransform* t =
      winograd_transform(static_cast<int>((h.kernel + stride - 1) / stride));
  if (t == nullptr) return nullptr;
  const int64_t group = p.group(), channels = bottom.shape(1), out = top.shape(1);
  const int64_t cells = int64_t{t->alpha} * t->alpha;
  // The transformed weights are one blob (Caffe counts in int); a work
  // buffer holds at least kLanes tiles of every input channel of a group.
  if (cells * out * (channels / group) * phases > INT_MAX ||
      cells * (channels / group) * phases * kLanes > kBufferFloats) {
    return nullptr;
  }
  const bool bias = p.bias_term();
  std::unique_ptr<WinogradConvolution> conv(new WinogradConvolution);
  conv->t_ = t;
  conv->kernel_ = h.kernel;
  conv->stride_ = stride;
  conv->pad_h_ = h.pad;
  conv->pad_w_ = w.pad;
  conv->group_ = static_cast<int>(group);
  conv->bias_ = bias;
  return conv->fits(layer, bottom, top) ? std::move(conv) : nullptr;
}

bool WinogradConvolution::fits(caffe::Layer<float>& layer, const caffe::Blob<float>& bottom,
                               const caffe::Blob<float>& top) const {
  const caffe::Blob<float>& weights = *layer.blobs()[0];
  if (bottom.num_axes() != 4 || top.num_axes() != 4) return false;
  const int64_t padded_h = int64_t{bottom.shape(2)} + 2 * pad_h_,
                padded_w = int64_t{bottom.shape(3)} + 2 * pad_w_;
  const bool shapes = bottom.shape(0) == top.shape(0) &&
                      bottom.shape(1) == int64_t{weights.shape(1)} * group_ &&
                      top.shape(1) == weights.shape(0) && padded_h >= kernel_ &&
                      padded_w >= kernel_ && top.shape(2) == (padded_h - kernel_) / stride_ + 1 &&
                      top.shape(3) == (padded_w - kernel_) / stride_ + 1;
  if (!shapes || stride_ == 1) return shapes;
  // A strided layer's phases are one blob (Caffe counts in int), sized factor
  // by factor so that no product overflows (a hostile pad makes the maps
  // large, the stride at most half the kernel).
  const int64_t reach = t_->r;
  int64_t count = 1;
  for (const int64_t factor : {int64_t{bottom.shape(0)}, int64_t{bottom.shape(1)},
                               stride_ * stride_, top.shape(2) + reach - 1,
                               top.shape(3) + reach - 1}) {
    if (factor == 0) return true;  // no phases: nothing to lay out
    if (count > INT_MAX / factor) return false;
    count *= factor;
  }
  return true;
}

winograd::Phases WinogradConvolution::phases(const caffe::Blob<float>& bottom,
                                             const caffe::Blob<float>& top) const {
  winograd::Phases p;
  p.stride = stride_;
  p.reach = t_->r;
  p.pad_h = pad_h_;
  p.pad_w = pad_w_;
  p.channels = bottom.shape(1);
  p.height = bottom.shape(2);
  p.width = bottom.shape(3);
  p.out_height = top.shape(2);
  p.out_width = top.shape(3);
  return p;
}

bool WinogradConvolution::panels_pay(caffe::Layer<float>& layer) const {
  const int64_t rows = winograd::panel_rows();
  const int64_t out = layer.blobs()[0]->shape(0), group_out = out / group_;
  const int64_t group_in = layer.blobs()[0]->shape(1) * stride_ * stride_;
  return rows > 0 && group_out % rows == 0 &&
         int64_t{t_->alpha} * t_->alpha * group_out * group_in * int64_t{sizeof(float)} >=
             kPanelWeightBytes;
}

void WinogradConvolution::transform_weights(caffe::Layer<float>& layer, bool panels) {
  const caffe::Blob<float>& weights = *layer.blobs()[0];
  const int64_t out = weights.shape(0), group_in = weights.shape(1) * stride_ * stride_;
  u_.Reshape(std::vector<int>{static_cast<int>(int64_t{t_->alpha} * t_->alpha * out * group_in)});
  const float* g = weights.cpu_data();
  caffe::Blob<float> g_phases;  // Caffe blob memory: the memory limit holds it too
  if (stride_ > 1) {
    g_phases.Reshape(std::vector<int>{static_cast<int>(out * group_in * t_->r * t_->r)});
    winograd::phase_weights(stride_, kernel_, t_->r, g, out, weights.shape(1),
                            g_phases.mutable_cpu_data());
    g = g_phases.cpu_data();
  }
  winograd::transform_weights(*t_, g, out, group_in, out / group_, u_.mutable_cpu_data(), panels);
}

bool WinogradConvolution::forward(caffe::Layer<float>& layer,
                                  const caffe::Blob<float>& bottom, caffe::Blob<float>* top,
                                  uint64_t weights_generation, Shared& buffers, bool relu) {
  caffe::Blob<float>* v_buffer = &buffers.v;
  caffe::Blob<float>* m_buffer = &buffers.m;
  // Only the layer's blob holds the weights' memory when no view of it is
  // alive; a view (a numpy array over params) may be written at any time.
  // The layout too: whether panels run can change (a test's kernel limit).
  const bool panels = panels_pay(layer);
  if (!u_made_ || weights_generation != u_generation_ || panels != u_panels_ ||
      layer.blobs()[0]->data().use_count() > 1) {
    u_made_ = false;
    const double mib = static_cast<double>(t_->alpha) * t_->alpha * layer.blobs()[0]->count() *
                       stride_ * stride_ / (kernel_ * kernel_) * sizeof(float) / 1048576.0;
    guard_caffe("layer '" + layer.layer_param().name() + "': convolution 'winograd' keeps its "
                "weights transformed (" + std::to_string(static_cast<int64_t>(mib + 0.5)) +
                " MiB; 'caffe' keeps no copy)", [&] { transform_weights(layer, panels); });
    u_made_ = true;
    u_panels_ = panels;
    u_generation_ = weights_generation;
  }
  const float* in = bottom.cpu_data();
  Plan s;
  s.t = t_;
  s.channels = bottom.shape(1);
  s.height = bottom.shape(2);
  s.width = bottom.shape(3);
  s.pad_h = pad_h_;
  s.pad_w = pad_w_;
  s.relu = relu;
  if (stride_ > 1) {
    // The stride-1 layer over the phases: their channels, no padding (the
    // phases hold it as zeros).
    const winograd::Phases p = phases(bottom, *top);
    buffers.phases.Reshape(std::vector<int>{
        static_cast<int>(bottom.shape(0) * p.channels * stride_ * stride_ * p.phase_height() *
                         p.phase_width())});
    winograd::phase_inputs(p, in, bottom.shape(0), buffers.phases.mutable_cpu_data());
    in = buffers.phases.cpu_data();
    s.channels = p.channels * stride_ * stride_;
    s.height = p.phase_height();
    s.width = p.phase_width();
    s.pad_h = s.pad_w = 0;
  }
  s.out_channels = top->shape(1);
  s.out_height = top->shape(2);
  s.out_width = top->shape(3);
  s.group_in = s.channels / group_;
  s.group_out = s.out_channels / group_;
  s.tiles_h = (s.out_height + t_->m - 1) / t_->m;
  s.tiles_w = (s.out_width + t_->m - 1) / t_->m;
  const int64_t cells = int64_t{t_->alpha} * t_->alpha;
  const int64_t tiles = bottom.shape(0) * s.tiles_h * s.tiles_w;
  if (tiles == 0 || s.out_channels == 0) return true;
  // Tiles per block: as many as the buffer holds for every input channel
  // of a group, a multiple of kLanes (for_layer checked it holds kLanes),
  // and at most kMostTiles. Larger blocks leave a block's transformed inputs
  // and products out of the caches: CaffeNet's conv2 on 8 images (1568
  // tiles) took 8.7 ms an image in one block, its products in two uneven
  // passes over the inputs, and 5.9 ms in seven blocks of 224 (alternating
  // runs; conv4 and conv5 10-20% faster too; one 451 image, at most 196
  // tiles a layer, unchanged).
  int64_t most = std::min(kBufferFloats / (cells * s.group_in) / kLanes,
                          (tiles + kLanes - 1) / kLanes) * kLanes;
  most = std::min(most, kMostTiles);
  // Transformed weights this small (CaffeNet's conv1: 0.6 MiB a group)
  // stay in a core's cache however often they are read, so the tiles go in
  // blocks the few-columns GEMM takes rather than in larger ones for
  // OpenBLAS, whose packing and zeroing of the products cost more than the
  // sums over conv1's 48 channels (conv1 8.8 to 6.9 ms, alternating runs).
  const int64_t few = winograd::few_columns();
  if (few > 0 && cells * s.group_out * s.group_in * int64_t{sizeof(float)} <= kCachedWeightBytes) {
    most = std::min(most, few);
  }
  // Even blocks of at most `most` (a multiple of kLanes): no short last one.
  const int64_t blocks = (tiles + most - 1) / most;
  const int64_t cols_max = ((tiles + blocks - 1) / blocks + kLanes - 1) / kLanes * kLanes;
  v_buffer->Reshape(std::vector<int>{static_cast<int>(cells * s.group_in * cols_max)});
  const float* u = u_.cpu_data();
  const float* bias = bias_ ? layer.blobs()[1]->cpu_data() : nullptr;
  float* out = top->mutable_cpu_data();
  float* v = v_buffer->mutable_cpu_data();
  for (int64_t group = 0; group < group_; ++group) {
    for (int64_t first = 0; first < tiles; first += cols_max) {
      const int64_t count = std::min(cols_max, tiles - first);
      const Columns cols{first, count, (count + kLanes - 1) / kLanes * kLanes};
      winograd::transform_inputs(s, in, group, cols, v);
      // Whole panels of output channels where U is in panels.
      const int64_t whole = panels ? winograd::panel_rows() : 1;
      const int64_t outs_max =
          std::clamp<int64_t>(kBufferFloats / (cells * cols.stride) / whole * whole, whole,
                              s.group_out);
      m_buffer->Reshape(std::vector<int>{static_cast<int>(cells * outs_max * cols.stride)});
      float* m = m_buffer->mutable_cpu_data();
      for (int64_t o = 0; o < s.group_out; o += outs_max) {
        const int64_t outs = std::min(outs_max, s.group_out - o);
        winograd::products(cells, u + (group * cells * s.group_out + o) * s.group_in,
                           s.group_out * s.group_in, v, m, outs, s.group_in, cols.stride,
                           panels);
        winograd::transform_outputs(s, m, bias, group, o, outs, cols, out);
      }
    }
  }
  return true;
}

}  // namespace surgery
