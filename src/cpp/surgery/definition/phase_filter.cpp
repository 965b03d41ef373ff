#include "surgery/definition/phase_filter.hpp"

#include "caffe/net.hpp"
#include "surgery/base/errors.hpp"

namespace surgery {

caffe::NetParameter filter_by_phase(const caffe::NetParameter& definition, caffe::Phase phase) {
  caffe::NetParameter with_phase = definition;
  with_phase.mutable_state()->set_phase(phase);
  caffe::NetParameter out;
  guard_caffe("filtering layers by phase",
              [&] { caffe::Net<float>::FilterNet(with_phase, &out); });
  return out;
}

}  // namespace surgery
