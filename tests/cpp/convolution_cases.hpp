// Single-convolution nets for the convolution engines' tests
// (test_winograd.cpp, test_onednn.cpp): random inputs and weights, a forward
// with a chosen algorithm, and the gap between two outputs.
#ifndef SURGERY_TESTS_CONVOLUTION_CASES_HPP_
#define SURGERY_TESTS_CONVOLUTION_CASES_HPP_

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "surgery/files/proto_io.hpp"
#include "surgery/runtime/net.hpp"

namespace surgery::test {

using Floats = std::vector<float>;

inline Floats random_floats(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  Floats v(n);
  for (auto& x : v) x = normal(gen);
  return v;
}

struct Case {
  int num, channels, height, width, outputs, kernel, pad, group, stride;
  bool bias;
  int dilation = 1;
};

inline std::string describe(const Case& c) {
  std::ostringstream s;
  s << c.num << "x" << c.channels << "x" << c.height << "x" << c.width << " -> " << c.outputs
    << " k" << c.kernel << " pad " << c.pad << " group " << c.group << " stride " << c.stride
    << " dilation " << c.dilation << (c.bias ? " bias" : "");
  return s.str();
}

// The net of `text`, its layer 'conv' given random weights (and bias) from `seed` on.
inline std::unique_ptr<Net> net_with_random_conv(const std::string& text, unsigned seed) {
  auto net = std::make_unique<Net>(parse_net_text(text, "convolution test"), "convolution test");
  for (const auto& blob : net->params("conv")) {
    const Floats values = random_floats(blob->count(), seed++, 0.1f);
    std::copy(values.begin(), values.end(), blob->mutable_cpu_data());
  }
  return net;
}

inline std::unique_ptr<Net> conv_net(const Case& c) {
  std::ostringstream text;
  text << "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: " << c.num
       << " dim: " << c.channels << " dim: " << c.height << " dim: " << c.width << " } } }\n"
       << "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'out' convolution_param {"
       << " num_output: " << c.outputs << " kernel_size: " << c.kernel << " pad: " << c.pad
       << " group: " << c.group << " stride: " << c.stride << " dilation: " << c.dilation
       << " bias_term: " << (c.bias ? "true" : "false") << " } }\n";
  return net_with_random_conv(text.str(), 11);
}

inline Floats run(Net& net, const Floats& input, ConvolutionAlgorithm algorithm) {
  net.set_convolution_algorithm(algorithm);
  const auto shape = net.declared_input_shapes().at("data");
  net.forward({{"data", InputView{shape, input.data()}}});
  const auto& out = net.blob("out");
  return Floats(out.cpu_data(), out.cpu_data() + out.count());
}

// Largest |a - b| over the largest |b|.
inline double relative_gap(const Floats& a, const Floats& b) {
  double gap = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    gap = std::max(gap, std::fabs(double{a[i]} - b[i]));
    scale = std::max(scale, std::fabs(double{b[i]}));
  }
  return gap / scale;
}

// `algorithm` computes the case's convolution (and nothing else) within
// `bound` of Caffe's own path, relative to the output's scale.
inline void expect_close_to_caffe(const Case& c, ConvolutionAlgorithm algorithm, double bound) {
  auto net = conv_net(c);
  const Floats input =
      random_floats(static_cast<size_t>(c.num) * c.channels * c.height * c.width, 5);
  const Floats caffe = run(*net, input, ConvolutionAlgorithm::kCaffe);
  const Floats ours = run(*net, input, algorithm);
  EXPECT_EQ(net->engine_layers(), std::vector<std::string>{"conv"}) << describe(c);
  ASSERT_EQ(ours.size(), caffe.size()) << describe(c);
  EXPECT_LT(relative_gap(ours, caffe), bound) << describe(c);
}

}  // namespace surgery::test

#endif  // SURGERY_TESTS_CONVOLUTION_CASES_HPP_
