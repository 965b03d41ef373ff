// Training with libcaffe's own solvers, fed batch by batch from memory, so a
// caller can train a small net without data layers or a database.
#ifndef SURGERY_TRAINER_HPP_
#define SURGERY_TRAINER_HPP_

#include <map>
#include <memory>
#include <string>

#include "caffe/solver.hpp"
#include "surgery/runtime/net.hpp"

namespace surgery {

class Trainer {
 public:
  // `solver` is a SolverParameter in text form (type, base_lr, momentum,
  // lr_policy...); `train_net` the net in text form, its data arriving
  // through Input layers and its loss as its only output.
  Trainer(const std::string& solver, const std::string& train_net);
  ~Trainer();

  // One solver iteration on `batch` (one entry per Input top, shapes as
  // declared); returns the loss.
  float step(const std::map<std::string, InputView>& batch);
  int iteration() const;
  // The trained weights, as a caffemodel any net with the same layer names loads.
  void save_weights(const std::string& caffemodel) const;

 private:
  std::unique_ptr<caffe::Solver<float>> solver_;
};

}  // namespace surgery

#endif  // SURGERY_TRAINER_HPP_
