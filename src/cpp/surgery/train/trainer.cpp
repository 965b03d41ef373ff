#include "surgery/train/trainer.hpp"

#include <algorithm>
#include <sstream>

#include <google/protobuf/text_format.h>

#include "caffe/sgd_solvers.hpp"
#include "caffe/util/rng.hpp"
#include "caffe/solver_factory.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/base/memory_guard.hpp"
#include "surgery/base/shape_text.hpp"
#include "surgery/definition/phase_filter.hpp"
#include "surgery/definition/validate.hpp"
#include "surgery/files/caffemodel_writer.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/files/solver_state.hpp"
#include "surgery/train/solver_snapshot.hpp"

namespace surgery {
namespace {

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

std::string Trainer::random_state() const {
  std::ostringstream out;
  out << *static_cast<caffe::rng_t*>(caffe::Caffe::rng_stream().generator());
  return out.str();
}

void Trainer::set_random_state(const std::string& state) {
  caffe::rng_t restored;
  // Boost reads each number and then the spaces after it: at the very end
  // of the text that would fail the stream, so the text gets one more.
  std::istringstream in(state + "\n");
  in >> restored;
  char more = 0;
  if (in.fail() || (in >> more)) {  // unread, or something after it
    throw ParseError("not the state of Caffe's random generator (Trainer.random_state's text)");
  }
  *static_cast<caffe::rng_t*>(caffe::Caffe::rng_stream().generator()) = restored;
}

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
  const caffe::SolverState state = solver_state_of(*solver_, caffemodel);
  auto weights = stage_caffemodel(*solver_->net(), caffemodel, nullptr);
  auto rest = stage_solver_state(state, solverstate);
  weights.commit();
  rest.commit();
}

void Trainer::restore(const std::string& caffemodel, const std::string& solverstate) {
  restore_solver(*solver_, solverstate, caffemodel);
}

}  // namespace surgery
