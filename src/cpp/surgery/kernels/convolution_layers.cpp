#include "surgery/kernels/convolution_layers.hpp"

#include "surgery/definition/geometry.hpp"

namespace surgery {

bool is_plain_convolution(caffe::Layer<float>& layer, const caffe::Blob<float>& bottom,
                          const caffe::Blob<float>& top) {
  const caffe::ConvolutionParameter& p = layer.layer_param().convolution_param();
  if (std::string(layer.type()) != "Convolution" || &bottom == &top ||
      (p.axis() != 1 && p.axis() != -3) || bottom.num_axes() != 4 || top.num_axes() != 4 ||
      layer.blobs().empty()) {
    return false;
  }
  const int64_t group = p.group(), channels = bottom.shape(1), out = top.shape(1);
  if (group < 1 || channels % group != 0 || out % group != 0) return false;
  const Window h = conv_window(p, 0), w = conv_window(p, 1);
  if (layer.blobs()[0]->shape() !=
      std::vector<int>{static_cast<int>(out), static_cast<int>(channels / group),
                       static_cast<int>(h.kernel), static_cast<int>(w.kernel)}) {
    return false;
  }
  return !p.bias_term() || (layer.blobs().size() >= 2 && layer.blobs()[1]->count() == out);
}

bool fusable_relu(const caffe::Net<float>& net, int index) {
  const int next = index + 1;
  if (next >= static_cast<int>(net.layers().size()) || net.top_vecs()[index].size() != 1 ||
      std::string(net.layers()[next]->type()) != "ReLU") {
    return false;
  }
  const auto& bottoms = net.bottom_vecs()[next];
  const auto& tops = net.top_vecs()[next];
  return bottoms.size() == 1 && tops.size() == 1 && bottoms[0] == net.top_vecs()[index][0] &&
         tops[0] == bottoms[0] &&
         net.layers()[next]->layer_param().relu_param().negative_slope() == 0.0f;
}

}  // namespace surgery
