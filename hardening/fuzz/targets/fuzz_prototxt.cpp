// Target 1, the prototxt loader: text -> parse and upgrade -> validate ->
// build a surgery::Net (Caffe's layer set-up included).
#include "harness.hpp"
#include "surgery/runtime/net.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto definition = fuzz::parse(data, size);
  if (!definition) return 0;
  if (fuzz::touches_files(*definition)) return -1;  // not built, not kept
  fuzz::expect_typed_errors([&] { surgery::Net net(*definition, "fuzz.prototxt"); });
  return 0;
}
