// Training with libcaffe's own solvers, fed batch by batch from memory, so a
// caller can train a small net without data layers or a database.
#ifndef SURGERY_TRAINER_HPP_
#define SURGERY_TRAINER_HPP_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "caffe/solver.hpp"
#include "surgery/runtime/net.hpp"

namespace surgery {

// One parameter blob, copied out of the net: its values or its gradient.
struct ParamArray {
  std::vector<int> shape;
  std::vector<float> values;
};
// Each layer with parameters, in the net's order, with its blobs (weights, bias).
using LayerParams = std::vector<std::pair<std::string, std::vector<ParamArray>>>;

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
  // The loss on `batch` and the gradient of each parameter, before the
  // solver's normalisation, regularisation and update; the weights and the
  // solver's state are left as they were.
  std::pair<float, LayerParams> gradients(const std::map<std::string, InputView>& batch);
  int iteration() const;

  LayerParams params() const;
  // Blob `index` of layer `layer` takes `values`, which must have its shape.
  void set_param(const std::string& layer, int index, const InputView& values);

  // The trained weights, as a caffemodel any net with the same layer names loads.
  void save_weights(const std::string& caffemodel) const;
  // The weights and the solver's state (iteration, learning-rate step,
  // momentum or Adam history), each written whole or not at all, as Caffe's
  // own snapshot pair; the state names the caffemodel as its learned net.
  void snapshot(const std::string& caffemodel, const std::string& solverstate) const;
  // Back to a snapshot of this same train net and solver type: steps after it
  // compute what an uninterrupted run would have (on the same device and
  // thread count). Both files are checked against the net before anything
  // changes.
  void restore(const std::string& caffemodel, const std::string& solverstate);
  // The state of Caffe's random generator for this thread (Dropout's masks,
  // fillers), as text: a snapshot's solver state does not hold it, so a
  // resumed net with Dropout would draw other masks. set_random_state
  // refuses text that is not such a state (ParseError) before changing it.
  std::string random_state() const;
  void set_random_state(const std::string& state);

 private:
  void feed(const std::map<std::string, InputView>& batch);
  std::unique_ptr<caffe::Solver<float>> solver_;
};

}  // namespace surgery

#endif  // SURGERY_TRAINER_HPP_
