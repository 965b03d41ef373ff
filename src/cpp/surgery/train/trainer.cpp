#include "surgery/train/trainer.hpp"

#include <algorithm>

#include <google/protobuf/text_format.h>

#include "caffe/solver_factory.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/base/shape_text.hpp"
#include "surgery/definition/phase_filter.hpp"
#include "surgery/definition/validate.hpp"
#include "surgery/files/caffemodel_writer.hpp"
#include "surgery/files/proto_io.hpp"

namespace surgery {

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
}

Trainer::~Trainer() = default;

float Trainer::step(const std::map<std::string, InputView>& batch) {
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
  guard_caffe("training step", [&] { solver_->Step(1); });
  return net.output_blobs().at(0)->cpu_data()[0];
}

int Trainer::iteration() const { return solver_->iter(); }

void Trainer::save_weights(const std::string& caffemodel) const {
  write_caffemodel(*solver_->net(), caffemodel);
}

}  // namespace surgery
