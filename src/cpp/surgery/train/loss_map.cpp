#include "surgery/train/loss_map.hpp"

#include <algorithm>

#include <google/protobuf/text_format.h>

#include "caffe/proto/caffe.pb.h"
#include "surgery/base/errors.hpp"
#include "surgery/files/proto_io.hpp"

namespace surgery {
namespace {

bool reads(const caffe::LayerParameter& layer, const std::string& blob) {
  return std::find(layer.bottom().begin(), layer.bottom().end(), blob) != layer.bottom().end();
}

bool writes(const caffe::LayerParameter& layer, const std::string& blob) {
  return std::find(layer.top().begin(), layer.top().end(), blob) != layer.top().end();
}

// Drops the final Softmax layers (probabilities are not trained on) and
// returns the index of the layer making the scores and the scores' blob.
std::pair<int, std::string> strip_to_scores(caffe::NetParameter* net) {
  while (net->layer_size() > 0 && net->layer(net->layer_size() - 1).type() == "Softmax") {
    const auto& last = net->layer(net->layer_size() - 1);
    if (last.bottom_size() != 1) break;
    net->mutable_layer()->RemoveLast();
  }
  if (net->layer_size() == 0 || net->layer(net->layer_size() - 1).top_size() == 0) {
    throw NetDefinitionError("the deploy net has no layer making class scores");
  }
  const std::string blob = net->layer(net->layer_size() - 1).top(0);
  for (int i = net->layer_size() - 1; i >= 0; --i) {
    const auto& layer = net->layer(i);
    if (writes(layer, blob) && !reads(layer, blob)) return {i, blob};
  }
  throw NetDefinitionError("no layer of the deploy net makes its scores '" + blob + "'");
}

caffe::LayerParameter* find_layer(caffe::NetParameter* net, const std::string& name) {
  for (auto& layer : *net->mutable_layer()) {
    if (layer.name() == name) return &layer;
  }
  throw NetDefinitionError("the deploy net has no layer '" + name + "'");
}

caffe::LayerParameter* data_input(caffe::NetParameter* net) {
  for (auto& layer : *net->mutable_layer()) {
    if (layer.type() == "Input") return &layer;
  }
  throw NetDefinitionError("the deploy net has no Input layer to feed images through");
}

void set_shape(caffe::BlobShape* shape, const std::vector<int>& dims) {
  shape->clear_dim();
  for (int d : dims) shape->add_dim(d);
}

int outputs_of(const caffe::LayerParameter& layer) {
  if (layer.type() == "Convolution") return layer.convolution_param().num_output();
  if (layer.type() == "InnerProduct") return layer.inner_product_param().num_output();
  throw NetDefinitionError("the scores come from " + layer.type() + " layer '" + layer.name() +
                           "': only a Convolution or InnerProduct head can be trained");
}

// The number of parameter blobs of a Convolution or InnerProduct layer.
int param_blobs(const caffe::LayerParameter& layer) {
  if (layer.type() == "Convolution") return layer.convolution_param().bias_term() ? 2 : 1;
  if (layer.type() == "InnerProduct") return layer.inner_product_param().bias_term() ? 2 : 1;
  throw NetDefinitionError("layer '" + layer.name() + "' is " + layer.type() +
                           ": only Convolution and InnerProduct layers can be frozen");
}

}  // namespace

ScoreLayer score_layer(const std::string& deploy) {
  caffe::NetParameter net = parse_net_text(deploy, "deploy net");
  const auto [index, blob] = strip_to_scores(&net);
  return {net.layer(index).name(), blob, outputs_of(net.layer(index))};
}

std::string loss_map_net(const std::string& deploy, const LossMapSpec& spec) {
  caffe::NetParameter net = parse_net_text(deploy, "deploy net");
  const std::string scores = strip_to_scores(&net).second;
  caffe::LayerParameter* input = data_input(&net);
  if (input->input_param().shape_size() != 1 || input->top_size() != 1) {
    throw NetDefinitionError("Input layer '" + input->name() +
                             "' declares several tops: fine-tuning takes a net of one input");
  }
  set_shape(input->mutable_input_param()->mutable_shape(0), spec.data_shape);
  for (const auto& name : spec.frozen) {
    caffe::LayerParameter* layer = find_layer(&net, name);
    const int blobs = param_blobs(*layer);
    while (layer->param_size() < blobs) layer->add_param();
    for (auto& param : *layer->mutable_param()) param.set_lr_mult(0);
  }
  for (const auto& layer : net.layer()) {
    if (writes(layer, "label") || layer.name() == "label" || layer.name() == "loss") {
      throw NetDefinitionError("the deploy net already has a layer or blob named 'label' or "
                               "'loss', which the loss map adds");
    }
  }
  caffe::LayerParameter* label = net.add_layer();
  label->set_name("label");
  label->set_type("Input");
  label->add_top("label");
  set_shape(label->mutable_input_param()->add_shape(), spec.label_shape);
  caffe::LayerParameter* loss = net.add_layer();
  loss->set_name("loss");
  loss->set_type("SoftmaxWithLoss");
  loss->add_bottom(scores);
  loss->add_bottom("label");
  loss->add_top("loss");
  loss->mutable_loss_param()->set_ignore_label(spec.ignore_label);
  loss->mutable_loss_param()->set_normalization(caffe::LossParameter::VALID);
  std::string text;
  google::protobuf::TextFormat::PrintToString(net, &text);
  return text;
}

std::string with_new_head(const std::string& deploy, int outputs, const std::string& name) {
  if (outputs < 1) throw ShapeError("a head needs at least one output");
  caffe::NetParameter net = parse_net_text(deploy, "deploy net");
  caffe::NetParameter stripped = net;
  const int index = strip_to_scores(&stripped).first;
  caffe::LayerParameter* head = net.mutable_layer(index);
  outputs_of(*head);
  for (const auto& layer : net.layer()) {
    if (layer.name() == name) {
      throw NetDefinitionError("the deploy net already has a layer '" + name +
                               "': give the new head another name");
    }
  }
  head->set_name(name);
  if (head->type() == "Convolution") {
    head->mutable_convolution_param()->set_num_output(outputs);
  } else {
    head->mutable_inner_product_param()->set_num_output(outputs);
  }
  std::string text;
  google::protobuf::TextFormat::PrintToString(net, &text);
  return text;
}

}  // namespace surgery
