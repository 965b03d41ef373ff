#include "surgery/definition/phase_filter.hpp"

#include "caffe/net.hpp"
#include "surgery/base/errors.hpp"

namespace surgery {

caffe::NetParameter filter_by_phase(const caffe::NetParameter& definition, caffe::Phase phase) {
  caffe::NetState state;
  state.set_phase(phase);
  return filter_by_state(definition, state);
}

caffe::NetParameter filter_by_state(const caffe::NetParameter& definition,
                                    const caffe::NetState& state) {
  caffe::NetParameter with_state = definition;
  *with_state.mutable_state() = state;
  caffe::NetParameter out;
  guard_caffe("filtering layers by phase",
              [&] { caffe::Net<float>::FilterNet(with_state, &out); });
  return out;
}

}  // namespace surgery
