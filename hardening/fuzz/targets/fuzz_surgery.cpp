// Target 3, surgery: fully_convolutionalize on fuzzed definitions. Besides
// crashes, checks the promise that a refused conversion leaves the net as it
// was: the same definition and the same weights.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "harness.hpp"
#include "surgery/edit/fully_convolutional.hpp"
#include "surgery/runtime/net.hpp"

namespace {

// The definition and every param's values, as one string to compare.
std::string state_of(surgery::Net& net) {
  std::string state = net.definition().SerializeAsString();
  for (const auto& param : net.caffe_net().params()) {
    state.append(reinterpret_cast<const char*>(param->cpu_data()),
                 sizeof(float) * static_cast<size_t>(param->count()));
  }
  return state;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto definition = fuzz::parse(data, size);
  if (!definition) return 0;
  if (fuzz::touches_files(*definition)) return -1;
  fuzz::expect_typed_errors([&] {
    surgery::Net net(*definition, "fuzz.prototxt");
    const std::string before = state_of(net);
    try {
      surgery::fully_convolutionalize(net);
    } catch (const surgery::Error& refused) {
      if (state_of(net) != before) {
        std::fprintf(stderr, "refused surgery changed the net: %s\n", refused.what());
        std::abort();
      }
    }
  });
  return 0;
}
