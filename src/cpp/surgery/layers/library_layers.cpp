#include "surgery/layers/library_layers.hpp"

#include <mutex>

#include "caffe/layer_factory.hpp"
#include "surgery/layers/dilated_pooling.hpp"

namespace surgery {
namespace {

caffe::shared_ptr<caffe::Layer<float>> make_dilated_pooling(const caffe::LayerParameter& param) {
  return caffe::shared_ptr<caffe::Layer<float>>(new DilatedPoolingLayer(param));
}

}  // namespace

const std::vector<std::string>& library_layer_types() {
  static const std::vector<std::string> types = {kDilatedPoolingType};
  return types;
}

void register_library_layers() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Caffe CHECKs (throws) if a libcaffe of your own registers the name already.
    caffe::LayerRegistry<float>::AddCreator(kDilatedPoolingType, make_dilated_pooling);
  });
}

void register_layer_type(const std::string& type,
                         caffe::LayerRegistry<float>::Creator creator) {
  static std::mutex mutex;
  const std::lock_guard<std::mutex> lock(mutex);
  if (caffe::LayerRegistry<float>::Registry().count(type) == 0) {
    caffe::LayerRegistry<float>::AddCreator(type, creator);
  }
}

std::vector<std::string> registered_layer_types() {
  register_library_layers();
  return caffe::LayerRegistry<float>::LayerTypeList();
}

}  // namespace surgery
