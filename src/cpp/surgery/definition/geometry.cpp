#include "surgery/definition/geometry.hpp"

#include <algorithm>
#include <climits>
#include <map>
#include <set>

#include "surgery/base/errors.hpp"
#include "surgery/definition/channel_gates.hpp"
#include "surgery/layers/dilated_pooling.hpp"

namespace surgery {
namespace {

struct Extent2 {
  Extent h, w;
};

int64_t pick(const google::protobuf::RepeatedField<uint32_t>& values, int axis, int64_t fallback) {
  if (values.empty()) return fallback;
  return values.Get(values.size() == 1 ? 0 : axis);
}

}  // namespace

Window conv_window(const caffe::ConvolutionParameter& p, int axis) {
  Window w;
  w.kernel = axis == 0 ? (p.has_kernel_h() ? p.kernel_h() : pick(p.kernel_size(), 0, 1))
                       : (p.has_kernel_w() ? p.kernel_w() : pick(p.kernel_size(), 1, 1));
  w.stride = axis == 0 ? (p.has_stride_h() ? p.stride_h() : pick(p.stride(), 0, 1))
                       : (p.has_stride_w() ? p.stride_w() : pick(p.stride(), 1, 1));
  w.pad = axis == 0 ? (p.has_pad_h() ? p.pad_h() : pick(p.pad(), 0, 0))
                    : (p.has_pad_w() ? p.pad_w() : pick(p.pad(), 1, 0));
  w.dilation = pick(p.dilation(), axis, 1);
  return w;
}

namespace {

// Pooling, and DilatedPooling with its dilation (dilated_pooling.hpp).
Window pool_window(const caffe::LayerParameter& layer, int axis) {
  const PoolingAxis a = pooling_axis(layer, axis);
  Window w;
  w.kernel = a.kernel;
  w.stride = a.stride;
  w.pad = a.pad;
  w.dilation = a.dilation;
  w.pooling = true;
  w.ceil = a.ceil;
  return w;
}

bool windowed(const std::string& type) {
  return type == "Convolution" || type == "Pooling" || type == kDilatedPoolingType;
}

Window window_of(const caffe::LayerParameter& layer, int axis) {
  return layer.type() == "Convolution" ? conv_window(layer.convolution_param(), axis)
                                       : pool_window(layer, axis);
}

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// Output size of one layer along one axis, as Caffe computes it
// (BaseConvolutionLayer::compute_output_shape, PoolingLayer::Reshape); 0 if
// the layer would get no output. A convolution needs its whole (dilated)
// kernel inside the padded input; a pooling window only needs to start in it.
int64_t size_through(int64_t in, const Window& w) {
  if (in < 1 || w.stride < 1) return 0;
  if (!w.pooling) {
    const int64_t extent = w.dilation * (w.kernel - 1) + 1;
    if (in + 2 * w.pad < extent) return 0;
    return (in + 2 * w.pad - extent) / w.stride + 1;
  }
  const int64_t span = in + 2 * w.pad - (w.dilation * (w.kernel - 1) + 1);
  int64_t out = (w.ceil ? ceil_div(span, w.stride) : floor_div(span, w.stride)) + 1;
  // Caffe drops a last window that would start in the padding only.
  if (w.pad > 0 && (out - 1) * w.stride >= in + w.pad) --out;
  return std::max<int64_t>(out, 0);
}

Extent through(const Extent& in, const Window& w) {
  Extent out;
  out.size = in.size + (w.dilation * (w.kernel - 1)) * in.stride;
  out.offset = in.offset - w.pad * in.stride;
  out.stride = in.stride * w.stride;
  return out;
}

// Union of several bottoms' extents (Eltwise, Concat); false if strides differ.
bool merge(const std::vector<Extent>& parts, Extent* out) {
  *out = parts.front();
  int64_t end = out->offset + out->size;
  for (const auto& p : parts) {
    if (p.stride != out->stride) return false;
    out->offset = std::min(out->offset, p.offset);
    end = std::max(end, p.offset + p.size);
  }
  out->size = end - out->offset;
  return true;
}

const std::set<std::string> kUnmodelled = {
    "Deconvolution", "Crop", "Upsample", "Interp", "SPP", "ROIPooling", "PixelShuffle",
    "MaxUnPool", "Resize", "Reorg", "Permute", "Flatten", "Reshape", "InnerProduct"};

bool global_pooling(const caffe::LayerParameter& layer) {
  return layer.type() == "Pooling" && layer.pooling_param().global_pooling();
}

// True when a bottom of `layer` other than a per-channel gate is not in
// `known`: a gate's blob is one cell whatever the input, so it never limits
// where a cell looks or how large a blob is.
template <typename Known>
bool reads_unknown(const caffe::LayerParameter& layer, const Known& known) {
  for (int b = 0; b < layer.bottom_size(); ++b) {
    if (!is_gate_bottom(layer, b) && known.count(layer.bottom(b)) == 0) return true;
  }
  return false;
}

// The smallest n in 1 .. 2^31 - 1 giving the blob at least one cell along
// `axis` (sizes only grow with the input); 0 if none does.
int64_t min_input(const caffe::NetParameter& net, const std::string& blob, int axis) {
  int64_t lo = 1, hi = INT_MAX;
  if (output_size(net, blob, axis, hi) < 1) return 0;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (output_size(net, blob, axis, mid) >= 1) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

}  // namespace

int64_t output_size(const caffe::NetParameter& net, const std::string& blob, int axis,
                    int64_t n) {
  std::map<std::string, int64_t> sizes;  // blobs whose size is known
  for (const auto& layer : net.layer()) {
    if (layer.bottom_size() == 0) {
      for (const auto& top : layer.top()) sizes[top] = n;
      continue;
    }
    const std::string& type = layer.type();
    const bool lost = kUnmodelled.count(type) > 0 || reads_unknown(layer, sizes);
    if (lost) {
      for (const auto& top : layer.top()) sizes.erase(top);
      continue;
    }
    int64_t in = sizes[layer.bottom(0)];
    if (type == "Eltwise" || type == "Concat") {
      for (const auto& bottom : layer.bottom()) in = std::min(in, sizes[bottom]);
    }
    int64_t out = in;
    if (global_pooling(layer)) {
      out = 1;
    } else if (windowed(type)) {
      out = size_through(in, window_of(layer, axis));
    }
    if (out < 1) return 0;  // Caffe refuses this input size (or gives an empty blob)
    for (const auto& top : layer.top()) sizes[top] = out;
  }
  const auto it = sizes.find(blob);
  return it == sizes.end() ? 0 : it->second;
}

Geometry compute_geometry(const caffe::NetParameter& net, const std::string& blob,
                          const RecordedWindow& recorded) {
  Geometry g;
  ChannelGates gates;
  try {
    gates = find_channel_gates(net);
  } catch (const NetDefinitionError& e) {
    g.known = false;
    g.why = e.what();
    return g;
  }
  bool window_seen = false;
  std::map<std::string, Extent2> extents;
  for (const auto& layer : net.layer()) {
    const std::string& type = layer.type();
    if (layer.bottom_size() == 0) {
      for (const auto& top : layer.top()) extents[top] = {};
      if (!window_seen && type == "Input" && layer.top_size() > 0) {
        window_seen = true;
        const auto& shapes = layer.input_param().shape();
        if (shapes.size() > 0 && shapes.Get(0).dim_size() == 4) {
          g.window_h = shapes.Get(0).dim(2);
          g.window_w = shapes.Get(0).dim(3);
        }
      }
      continue;
    }
    if (reads_unknown(layer, extents)) continue;  // its tops stay unknown
    if (gates.poolings.count(layer.name())) {
      g.gate_poolings.push_back(layer.name());
      continue;  // a gate, not a place: its tops stay unknown
    }
    Extent2 out;
    if (windowed(type)) {
      const auto& in = extents[layer.bottom(0)];
      const bool conv = type == "Convolution";
      if (!conv && layer.pooling_param().global_pooling()) {
        g.known = false;
        g.why = "layer '" + layer.name() + "' pools globally";
        return g;
      }
      const Window h = window_of(layer, 0);
      const Window w = window_of(layer, 1);
      if (h.pad > 0 || w.pad > 0) g.padded_layers.push_back(layer.name());
      out = {through(in.h, h), through(in.w, w)};
    } else if (kUnmodelled.count(type)) {
      for (const auto& top : layer.top()) extents.erase(top);
      if (std::find(layer.top().begin(), layer.top().end(), blob) != layer.top().end()) {
        g.known = false;
        g.why = "layer '" + layer.name() + "' (" + type + ") changes space in a way not modelled";
        return g;
      }
      continue;
    } else if (layer.bottom_size() > 1 && (type == "Eltwise" || type == "Concat")) {
      std::vector<Extent> hs, ws;
      for (const auto& b : layer.bottom()) {
        hs.push_back(extents[b].h);
        ws.push_back(extents[b].w);
      }
      if (!merge(hs, &out.h) || !merge(ws, &out.w)) {
        g.known = false;
        g.why = "layer '" + layer.name() + "' joins blobs of different strides";
        return g;
      }
    } else {
      out = extents[layer.bottom(0)];  // element-wise or channel-wise: space unchanged
    }
    for (const auto& top : layer.top()) extents[top] = out;
  }
  const auto it = extents.find(blob);
  if (it == extents.end()) {
    g.known = false;
    if (g.why.empty()) g.why = "blob '" + blob + "' is not reached from the inputs through modelled layers";
    return g;
  }
  g.receptive_h = it->second.h;
  g.receptive_w = it->second.w;
  g.min_input_h = min_input(net, blob, 0);
  g.min_input_w = min_input(net, blob, 1);
  const int64_t declared_h = g.window_h, declared_w = g.window_w;
  const int64_t fit_h = g.receptive_h.size + 2 * g.receptive_h.offset;
  const int64_t fit_w = g.receptive_w.size + 2 * g.receptive_w.offset;
  if (!recorded.empty()) {
    g.window_h = recorded.h;
    g.window_w = recorded.w;
    g.window_rule = "recorded";
  } else if (declared_h > 0 && declared_w > 0 && output_size(net, blob, 0, declared_h) == 1 &&
             output_size(net, blob, 1, declared_w) == 1) {
    g.window_rule = "declared";
  } else if (fit_h >= 1 && fit_w >= 1) {
    g.window_h = fit_h;
    g.window_w = fit_w;
    g.window_rule = "exact fit";
  } else {
    g.window_h = g.window_w = 0;
  }
  return g;
}

}  // namespace surgery
