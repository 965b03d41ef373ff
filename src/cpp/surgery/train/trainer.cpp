#include "surgery/train/trainer.hpp"

#include <algorithm>

#include <google/protobuf/text_format.h>

#include "caffe/sgd_solvers.hpp"
#include "caffe/solver_factory.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/base/memory_guard.hpp"
#include "surgery/base/shape_text.hpp"
#include "surgery/definition/phase_filter.hpp"
#include "surgery/definition/validate.hpp"
#include "surgery/files/caffemodel_writer.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/files/solver_state.hpp"

namespace surgery {
namespace {

// Caffe sets a solver's position only from its own snapshot files, which it
// reads with readers that abort on a bad file; this reaches the two fields
// from a derived class's scope, as C++ allows for protected members.
struct SolverPosition : caffe::Solver<float> {
  static int& iter(caffe::Solver<float>& solver) { return solver.*(&SolverPosition::iter_); }
  static int& current_step(caffe::Solver<float>& solver) {
    return solver.*(&SolverPosition::current_step_);
  }
};

// Every solver libcaffe registers (SGD, Nesterov, AdaGrad, RMSProp,
// AdaDelta, Adam) keeps its state in SGDSolver's history.
const std::vector<boost::shared_ptr<caffe::Blob<float>>>& history(caffe::Solver<float>& solver) {
  auto* sgd = dynamic_cast<caffe::SGDSolver<float>*>(&solver);
  if (!sgd) throw Error(std::string("solver type ") + solver.type() + " keeps no history");
  return sgd->history();
}

LayerParams copy_params(const caffe::Net<float>& net, bool gradients) {
  LayerParams out;
  for (size_t i = 0; i < net.layers().size(); ++i) {
    const auto& blobs = net.layers()[i]->blobs();
    if (blobs.empty()) continue;
    std::vector<ParamArray> arrays;
    for (const auto& blob : blobs) {
      const float* from = gradients ? blob->cpu_diff() : blob->cpu_data();
      arrays.push_back({blob->shape(), std::vector<float>(from, from + blob->count())});
    }
    out.emplace_back(net.layer_names()[i], std::move(arrays));
  }
  return out;
}

std::string shape_of(const caffe::BlobProto& proto) {
  std::vector<int> dims(proto.shape().dim().begin(), proto.shape().dim().end());
  return shape_text(dims);
}

// ShapeError unless every blob `weights` holds for a layer of `net` fits it,
// so that a refused file leaves the net as it was.
void check_weights_fit(const caffe::Net<float>& net, const caffe::NetParameter& weights,
                       const std::string& path) {
  for (const auto& layer : weights.layer()) {
    if (!net.has_layer(layer.name())) continue;
    const auto& blobs = net.layer_by_name(layer.name())->blobs();
    if (layer.blobs_size() != static_cast<int>(blobs.size())) {
      throw ShapeError("weights '" + path + "': layer '" + layer.name() + "' has " +
                       std::to_string(layer.blobs_size()) + " blobs, the net's has " +
                       std::to_string(blobs.size()));
    }
    for (int i = 0; i < layer.blobs_size(); ++i) {
      if (!blobs[i]->ShapeEquals(layer.blobs(i))) {
        throw ShapeError("weights '" + path + "': layer '" + layer.name() + "' blob " +
                         std::to_string(i) + " is " + shape_of(layer.blobs(i)) +
                         ", the net's is " + shape_text(blobs[i]->shape()));
      }
    }
  }
}

}  // namespace

Trainer::Trainer(const std::string& solver, const std::string& train_net) {
  caffe::SolverParameter param;
  if (!google::protobuf::TextFormat::ParseFromString(solver, &param)) {
    throw ParseError("cannot parse the solver parameters");
  }
  *param.mutable_net_param() = parse_net_text(train_net, "train net");
  validate_definition(filter_by_phase(param.net_param(), caffe::TRAIN), "train net");
  param.set_snapshot(0);
  param.set_display(0);
  param.set_solver_mode(caffe::SolverParameter::CPU);
  solver_.reset(guard_caffe("creating the solver", [&] {
    return caffe::SolverRegistry<float>::CreateSolver(param);
  }));
  // Caffe allocates activations and gradients at the first step: refused here instead.
  const auto& net = *solver_->net();
  const size_t params = std::max<size_t>(1, net.learnable_params().size());
  check_memory(training_bytes(net, static_cast<int>(history(*solver_).size() / params)),
               "the train net");
}

Trainer::~Trainer() = default;

void Trainer::feed(const std::map<std::string, InputView>& batch) {
  auto& net = *solver_->net();
  for (const auto& [name, view] : batch) {
    if (!net.has_blob(name)) throw Error("the train net has no input '" + name + "'");
    auto& blob = *net.blob_by_name(name);
    if (blob.shape() != view.shape) {
      throw ShapeError("batch '" + name + "' is " + shape_text(view.shape) + ", the net takes " +
                       shape_text(blob.shape()));
    }
    std::copy(view.data, view.data + blob.count(), blob.mutable_cpu_data());
  }
}

float Trainer::step(const std::map<std::string, InputView>& batch) {
  feed(batch);
  auto& net = *solver_->net();
  guard_caffe("training step", [&] { solver_->Step(1); });
  return net.output_blobs().at(0)->cpu_data()[0];
}

std::pair<float, LayerParams> Trainer::gradients(const std::map<std::string, InputView>& batch) {
  feed(batch);
  auto& net = *solver_->net();
  const float loss = guard_caffe("computing gradients", [&] {
    net.ClearParamDiffs();
    return net.ForwardBackward();
  });
  return {loss, copy_params(net, true)};
}

int Trainer::iteration() const { return solver_->iter(); }

LayerParams Trainer::params() const { return copy_params(*solver_->net(), false); }

void Trainer::set_param(const std::string& layer, int index, const InputView& values) {
  auto& net = *solver_->net();
  if (!net.has_layer(layer)) throw Error("the train net has no layer '" + layer + "'");
  const auto& blobs = net.layer_by_name(layer)->blobs();
  if (index < 0 || index >= static_cast<int>(blobs.size())) {
    throw Error("layer '" + layer + "' has " + std::to_string(blobs.size()) +
                " parameter blob(s), not a blob " + std::to_string(index));
  }
  auto& blob = *blobs[index];
  if (blob.shape() != values.shape) {
    throw ShapeError("parameter " + std::to_string(index) + " of layer '" + layer + "' is " +
                     shape_text(blob.shape()) + ", not " + shape_text(values.shape));
  }
  std::copy(values.data, values.data + blob.count(), blob.mutable_cpu_data());
}

void Trainer::save_weights(const std::string& caffemodel) const {
  write_caffemodel(*solver_->net(), caffemodel);
}

void Trainer::snapshot(const std::string& caffemodel, const std::string& solverstate) const {
  if (same_file(caffemodel, solverstate)) {
    throw FileError("the snapshot's weights and state would both be written to '" + caffemodel +
                    "'");
  }
  caffe::SolverState state;
  state.set_iter(solver_->iter());
  state.set_current_step(SolverPosition::current_step(*solver_));
  state.set_learned_net(caffemodel);
  for (const auto& blob : history(*solver_)) blob->ToProto(state.add_history());
  auto weights = stage_caffemodel(*solver_->net(), caffemodel, nullptr);
  auto rest = stage_solver_state(state, solverstate);
  weights.commit();
  rest.commit();
}

void Trainer::restore(const std::string& caffemodel, const std::string& solverstate) {
  const caffe::SolverState state = read_solver_state(solverstate);
  const auto& blobs = history(*solver_);
  if (state.history_size() != static_cast<int>(blobs.size())) {
    throw ShapeError("solver state '" + solverstate + "' holds " +
                     std::to_string(state.history_size()) + " history blobs, this " +
                     solver_->type() + " solver keeps " + std::to_string(blobs.size()) +
                     ": a snapshot of another net or solver type");
  }
  for (int i = 0; i < state.history_size(); ++i) {
    if (!blobs[i]->ShapeEquals(state.history(i))) {
      throw ShapeError("solver state '" + solverstate + "': history blob " + std::to_string(i) +
                       " is " + shape_of(state.history(i)) + ", the net's is " +
                       shape_text(blobs[i]->shape()) + ": a snapshot of another net");
    }
  }
  if (state.iter() < 0 || state.current_step() < 0) {
    throw ParseError("solver state '" + solverstate + "' holds a negative iteration or step");
  }
  const caffe::NetParameter weights = read_net_binary(caffemodel);
  check_weights_fit(*solver_->net(), weights, caffemodel);
  guard_caffe("restoring '" + caffemodel + "'",
              [&] { solver_->net()->CopyTrainedLayersFrom(weights); });
  for (int i = 0; i < state.history_size(); ++i) blobs[i]->FromProto(state.history(i), false);
  SolverPosition::iter(*solver_) = state.iter();
  SolverPosition::current_step(*solver_) = state.current_step();
}

}  // namespace surgery
