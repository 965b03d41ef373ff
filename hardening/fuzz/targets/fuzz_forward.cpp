// Target 4, dense forward: a fuzzed definition made fully convolutional
// (or left as it is where surgery refuses it), then a small input a little
// larger than declared, as dense inference feeds it, forwarded through it
// with Caffe's convolutions and again with Winograd's.
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "harness.hpp"
#include "surgery/edit/fully_convolutional.hpp"
#include "surgery/runtime/net.hpp"

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
    fuzz::expect_typed_errors([&] { surgery::fully_convolutionalize(net); });
    std::map<std::string, std::vector<float>> values;
    std::map<std::string, surgery::InputView> inputs;
    for (auto [name, shape] : net.declared_input_shapes()) {
      size_t count = 1;
      for (size_t axis = 0; axis < shape.size(); ++axis) {
        // One image (LeNet declares 64): a bigger batch only costs time.
        if (axis == 0 && shape.size() == 4) shape[axis] = 1;
        if (axis >= 2 && shape[axis] > 0 && shape[axis] < 1 << 16) shape[axis] += 3;
        count *= shape[axis] > 0 ? static_cast<size_t>(shape[axis]) : 0;
      }
      // The memory guard refuses what does not fit; values past a cap would
      // only measure the allocator.
      if (count > (size_t{1} << 22)) return;
      auto& v = values[name];
      v.resize(count);
      for (size_t i = 0; i < count; ++i) v[i] = std::sin(0.37f * static_cast<float>(i));
      inputs[name] = surgery::InputView{shape, v.data()};
    }
    net.forward(inputs);
    net.set_convolution_algorithm(surgery::ConvolutionAlgorithm::kWinograd);
    net.forward(inputs);
  });
  return 0;
}
