// The train net of dense fine-tuning, made from a deploy net: the net up to
// its class scores, a label map fed beside the image, and Caffe's
// SoftmaxWithLoss over every cell of the map, so that the loss is the mean
// of the classifier's losses on every window that has a label.
#ifndef SURGERY_LOSS_MAP_HPP_
#define SURGERY_LOSS_MAP_HPP_

#include <string>
#include <vector>

namespace surgery {

struct LossMapSpec {
  std::vector<int> data_shape;   // N, C, H, W of the image batch
  std::vector<int> label_shape;  // N, H', W' of the score map (N for a classifier)
  int ignore_label = -1;         // cells that count for nothing
  std::vector<std::string> frozen;  // layers whose weights stay (lr_mult 0)
};

// The layer that computes the deploy net's class scores (the bottom of a
// final Softmax, else the last layer's top), and that blob.
struct ScoreLayer {
  std::string layer;
  std::string blob;
  int outputs;
};
ScoreLayer score_layer(const std::string& deploy);

// The train net, as text: the deploy net's layers up to its scores, its
// input declared at data_shape, an Input `label` of label_shape and a
// SoftmaxWithLoss `loss` with ignore_label and VALID normalisation (the
// mean over the cells that count). NetDefinitionError for a net whose
// scores or input cannot be found, or a frozen layer it lacks.
std::string loss_map_net(const std::string& deploy, const LossMapSpec& spec);

// The deploy net with its score layer giving `outputs` classes and named
// `name` (so that the old weights, matched by layer name, skip it).
std::string with_new_head(const std::string& deploy, int outputs, const std::string& name);

}  // namespace surgery

#endif  // SURGERY_LOSS_MAP_HPP_
