#include "surgery/runtime/live_net.hpp"

#include "surgery/base/errors.hpp"

namespace surgery {
namespace {

template <typename T>
void erase_at(std::vector<T>* v, int index) {
  v->erase(v->begin() + index);
}

}  // namespace

int LiveNet::layer_index(const std::string& name) const {
  const auto it = layer_names_index_.find(name);
  if (it == layer_names_index_.end()) throw Error("the net has no layer '" + name + "'");
  return it->second;
}

void LiveNet::replace_layer(int index, const caffe::shared_ptr<caffe::Layer<float>>& layer) {
  layer_names_index_.erase(layer_names_[index]);
  layers_[index] = layer;
  layer_names_[index] = layer->layer_param().name();
  layer_names_index_[layer_names_[index]] = index;
  layer->SetUp(bottom_vecs_[index], top_vecs_[index]);
}

void LiveNet::bypass_layer(int index) {
  const int from = top_id_vecs_[index].at(0);
  const int to = bottom_id_vecs_[index].at(0);
  for (size_t j = index + 1; j < layers_.size(); ++j) {
    for (size_t k = 0; k < bottom_id_vecs_[j].size(); ++k) {
      if (bottom_id_vecs_[j][k] == from) {
        bottom_id_vecs_[j][k] = to;
        bottom_vecs_[j][k] = blobs_[to].get();
      }
    }
  }
  erase_at(&layers_, index);
  erase_at(&layer_names_, index);
  erase_at(&layer_need_backward_, index);
  erase_at(&bottom_vecs_, index);
  erase_at(&bottom_id_vecs_, index);
  erase_at(&bottom_need_backward_, index);
  erase_at(&top_vecs_, index);
  erase_at(&top_id_vecs_, index);
  erase_at(&param_id_vecs_, index);
  layer_names_index_.clear();
  for (size_t i = 0; i < layer_names_.size(); ++i) layer_names_index_[layer_names_[i]] = i;
}

void LiveNet::rename_blob(const std::string& from, const std::string& to) {
  const auto it = blob_names_index_.find(from);
  if (it == blob_names_index_.end()) throw Error("the net has no blob '" + from + "'");
  const int id = it->second;
  blob_names_index_.erase(it);
  blob_names_[id] = to;
  blob_names_index_[to] = id;
}

LiveNet::Structure LiveNet::structure() const {
  return {layers_,         layer_names_,   layer_names_index_, layer_need_backward_,
          bottom_vecs_,    top_vecs_,      bottom_id_vecs_,    top_id_vecs_,
          param_id_vecs_,  bottom_need_backward_, blob_names_, blob_names_index_};
}

void LiveNet::restore(const Structure& s) {
  layers_ = s.layers;
  layer_names_ = s.layer_names;
  layer_names_index_ = s.layer_names_index;
  layer_need_backward_ = s.layer_need_backward;
  bottom_vecs_ = s.bottom_vecs;
  top_vecs_ = s.top_vecs;
  bottom_id_vecs_ = s.bottom_id_vecs;
  top_id_vecs_ = s.top_id_vecs;
  param_id_vecs_ = s.param_id_vecs;
  bottom_need_backward_ = s.bottom_need_backward;
  blob_names_ = s.blob_names;
  blob_names_index_ = s.blob_names_index;
}

}  // namespace surgery
