// caffe::Net with the few structural edits net surgery needs, made on the
// running net itself: no rebuild, no reload, param blobs kept where they are.
//
// What an edited net keeps valid: Forward, Reshape, blob and layer lookup
// by name, and saving (the definition is edited in step; weights are read
// layer by layer). Not kept: the param bookkeeping by layer index
// (param_layer_indices_, read by debug_info, ShareWeights and the solver's
// updates), so an edited net is for inference and saving: never turn on
// debug_info for it, never hand it to a solver.
#ifndef SURGERY_LIVE_NET_HPP_
#define SURGERY_LIVE_NET_HPP_

#include <map>
#include <string>
#include <vector>

#include "caffe/net.hpp"

namespace surgery {

class LiveNet : public caffe::Net<float> {
 public:
  using caffe::Net<float>::Net;

  // Index of the layer called `name` in the running net; Error if none.
  int layer_index(const std::string& name) const;

  // Puts `layer` (its param blobs already set) in place of layer `index`
  // and sets it up on the same bottom and top blobs. Param blobs shared with
  // the old layer stay valid everywhere they are referenced.
  void replace_layer(int index, const caffe::shared_ptr<caffe::Layer<float>>& layer);

  // Removes a one-bottom, one-top layer whose top has no other reader than
  // later layers: those read its bottom instead. For Flatten and Reshape,
  // which only relabel the shape of the same memory.
  void bypass_layer(int index);

  // Gives a blob a new name (lookups by the old name stop working).
  void rename_blob(const std::string& from, const std::string& to);

  // What the three edits above change: the layers, how they connect, the
  // blob names. Layers and blobs are shared, not copied, so a snapshot is
  // cheap; restoring one undoes every edit made since it was taken (param
  // blobs the caller reshaped or rewrote are the caller's to put back).
  struct Structure {
    std::vector<caffe::shared_ptr<caffe::Layer<float>>> layers;
    std::vector<std::string> layer_names;
    std::map<std::string, int> layer_names_index;
    std::vector<bool> layer_need_backward;
    std::vector<std::vector<caffe::Blob<float>*>> bottom_vecs, top_vecs;
    std::vector<std::vector<int>> bottom_id_vecs, top_id_vecs, param_id_vecs;
    std::vector<std::vector<bool>> bottom_need_backward;
    std::vector<std::string> blob_names;
    std::map<std::string, int> blob_names_index;
  };
  Structure structure() const;
  // Puts a snapshot back; the caller reshapes the net afterwards.
  void restore(const Structure& structure);
};

}  // namespace surgery

#endif  // SURGERY_LIVE_NET_HPP_
