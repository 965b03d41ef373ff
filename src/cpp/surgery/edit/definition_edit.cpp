#include "surgery/edit/definition_edit.hpp"

#include "surgery/base/errors.hpp"

namespace surgery {
namespace {

int find_layer(const caffe::NetParameter& net, const std::string& name) {
  for (int i = 0; i < net.layer_size(); ++i) {
    if (net.layer(i).name() == name) return i;
  }
  throw Error("the definition has no layer '" + name + "'");
}

// Every reference to blob `from` after layer `index` now says `to`.
void rename_later(caffe::NetParameter* net, int index, const std::string& from,
                  const std::string& to, bool tops_too) {
  for (int j = index + 1; j < net->layer_size(); ++j) {
    auto* layer = net->mutable_layer(j);
    for (auto& bottom : *layer->mutable_bottom()) {
      if (bottom == from) bottom = to;
    }
    if (!tops_too) continue;
    for (auto& top : *layer->mutable_top()) {
      if (top == from) top = to;
    }
  }
}

void set_kernel(int kernel_h, int kernel_w, caffe::ConvolutionParameter* conv) {
  if (kernel_h == kernel_w) {
    conv->add_kernel_size(kernel_h);
  } else {
    conv->set_kernel_h(kernel_h);
    conv->set_kernel_w(kernel_w);
  }
}

}  // namespace

caffe::LayerParameter convert_inner_product(caffe::NetParameter* net, const std::string& name,
                                            const std::string& new_name, int kernel_h,
                                            int kernel_w, const std::string& new_top) {
  const int index = find_layer(*net, name);
  auto* layer = net->mutable_layer(index);
  const caffe::InnerProductParameter ip = layer->inner_product_param();
  layer->clear_inner_product_param();
  // An InnerProduct layer may carry a convolution_param Caffe ignores; the
  // Convolution must not inherit its pad, stride or group (a stray pad_w of
  // 2^31 - 1 overflowed Caffe's output size: a fuzz finding).
  layer->clear_convolution_param();
  layer->set_type("Convolution");
  layer->set_name(new_name);
  auto* conv = layer->mutable_convolution_param();
  conv->set_num_output(ip.num_output());
  conv->set_bias_term(ip.bias_term());
  set_kernel(kernel_h, kernel_w, conv);
  if (ip.has_weight_filler()) *conv->mutable_weight_filler() = ip.weight_filler();
  if (ip.has_bias_filler()) *conv->mutable_bias_filler() = ip.bias_filler();
  if (!new_top.empty() && new_top != layer->top(0)) {
    const std::string old_top = layer->top(0);
    layer->set_top(0, new_top);
    // In-place layers after it (ReLU, Dropout) write the same blob: rename their tops too.
    rename_later(net, index, old_top, new_top, true);
  }
  return *layer;
}

void remove_passthrough(caffe::NetParameter* net, const std::string& name) {
  const int index = find_layer(*net, name);
  const std::string bottom = net->layer(index).bottom(0);
  const std::string top = net->layer(index).top(0);
  rename_later(net, index, top, bottom, false);
  net->mutable_layer()->DeleteSubrange(index, 1);
}

caffe::LayerParameter fix_global_pooling(caffe::NetParameter* net, const std::string& name,
                                         int kernel_h, int kernel_w) {
  auto* layer = net->mutable_layer(find_layer(*net, name));
  auto* pool = layer->mutable_pooling_param();
  pool->clear_global_pooling();
  pool->clear_kernel_size();
  pool->clear_stride();
  pool->clear_pad();
  if (kernel_h == kernel_w) {
    pool->set_kernel_size(kernel_h);
  } else {
    pool->set_kernel_h(kernel_h);
    pool->set_kernel_w(kernel_w);
  }
  pool->set_stride(1);
  return *layer;
}

}  // namespace surgery
