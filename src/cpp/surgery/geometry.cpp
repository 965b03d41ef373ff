#include "surgery/geometry.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace surgery {
namespace {

struct Extent2 {
  Extent h, w;
};

// Kernel, stride, pad and dilation along one spatial axis (0 = h, 1 = w).
struct Window {
  int64_t kernel = 1, stride = 1, pad = 0, dilation = 1;
};

int64_t pick(const google::protobuf::RepeatedField<uint32_t>& values, int axis, int64_t fallback) {
  if (values.empty()) return fallback;
  return values.Get(values.size() == 1 ? 0 : axis);
}

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

Window pool_window(const caffe::PoolingParameter& p, int axis) {
  Window w;
  w.kernel = axis == 0 ? (p.has_kernel_h() ? p.kernel_h() : p.kernel_size())
                       : (p.has_kernel_w() ? p.kernel_w() : p.kernel_size());
  w.stride = axis == 0 ? (p.has_stride_h() ? p.stride_h() : p.stride())
                       : (p.has_stride_w() ? p.stride_w() : p.stride());
  w.pad = axis == 0 ? (p.has_pad_h() ? p.pad_h() : p.pad()) : (p.has_pad_w() ? p.pad_w() : p.pad());
  return w;
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

}  // namespace

Geometry compute_geometry(const caffe::NetParameter& net, const std::string& blob) {
  Geometry g;
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
    if (std::any_of(layer.bottom().begin(), layer.bottom().end(),
                    [&](const std::string& b) { return extents.count(b) == 0; })) {
      continue;  // reads a blob we lost track of; its tops stay unknown
    }
    Extent2 out;
    if (type == "Convolution" || type == "Pooling") {
      const auto& in = extents[layer.bottom(0)];
      const bool conv = type == "Convolution";
      if (!conv && layer.pooling_param().global_pooling()) {
        g.known = false;
        g.why = "layer '" + layer.name() + "' pools globally";
        return g;
      }
      const Window h = conv ? conv_window(layer.convolution_param(), 0)
                            : pool_window(layer.pooling_param(), 0);
      const Window w = conv ? conv_window(layer.convolution_param(), 1)
                            : pool_window(layer.pooling_param(), 1);
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
  if (g.window_h <= 0 || g.window_w <= 0) {
    g.known = false;
    g.why = "the first input declares no N x C x H x W shape, so there is no window";
  }
  return g;
}

}  // namespace surgery
