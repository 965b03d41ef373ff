// Target 2, the caffemodel reader: bytes -> a file -> the tiny net's
// weights, by both paths a load takes: surgery::Net(prototxt, weights)
// (stream_caffemodel, falling back to the general path for the forms it
// leaves to it) and Net::load_weights (read_net_binary + plan_weight_copy).
#include <cstdio>
#include <fstream>
#include <string>

#include "harness.hpp"
#include "surgery/runtime/net.hpp"
#include "tiny_net.hpp"

namespace {

std::string prototxt, caffemodel;

void write(const std::string& path, const char* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data, static_cast<std::streamsize>(size));
  if (!out.flush()) std::abort();  // the harness's own failure, not a finding
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::init();
  prototxt = fuzz::scratch_path("tiny.prototxt");
  caffemodel = fuzz::scratch_path("fuzz.caffemodel");
  write(prototxt, fuzz::kTinyNet, sizeof(fuzz::kTinyNet) - 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  write(caffemodel, reinterpret_cast<const char*>(data), size);
  fuzz::expect_typed_errors([&] { surgery::Net net(prototxt, caffemodel); });
  fuzz::expect_typed_errors([&] {
    surgery::Net net(prototxt);
    net.load_weights(caffemodel);
  });
  return 0;
}
