// For the tests of the recipe's GEMM patches (0012's streamed GEMM, 0020's
// oneDNN sgemm, 0024's oneDNN matmul): a 1x1 convolution without bias on
// one image is a plain product, weights (outputs x channels) times the
// input (channels x pixels), so the layer's output can be compared with the
// product a patch computes on the same operands.
#ifndef SURGERY_TESTS_ONE_BY_ONE_CONVOLUTION_HPP_
#define SURGERY_TESTS_ONE_BY_ONE_CONVOLUTION_HPP_

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "caffe/layer_factory.hpp"
#include "caffe/util/onednn_matmul.hpp"
#include "caffe/util/streamed_gemm.hpp"

namespace surgery::test {

inline std::vector<float> random_values(long count, unsigned seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal;
  std::vector<float> values(count);
  for (float& v : values) v = normal(generator);
  return values;
}

// Caffe's Convolution layer `name`, 1x1 and without bias, run on `images`
// channels x side x side images: its input, weights and output.
struct OneByOneConvolution {
  std::vector<float> input, weights, output;
  OneByOneConvolution(const std::string& name, int outputs, int channels, int side,
                      unsigned seed, int images = 1) {
    caffe::LayerParameter param;
    param.set_name(name);
    param.set_type("Convolution");
    param.mutable_convolution_param()->set_num_output(outputs);
    param.mutable_convolution_param()->add_kernel_size(1);
    param.mutable_convolution_param()->set_bias_term(false);
    auto layer = caffe::LayerRegistry<float>::CreateLayer(param);
    caffe::Blob<float> bottom(images, channels, side, side), top;
    input = random_values(bottom.count(), seed);
    std::copy(input.begin(), input.end(), bottom.mutable_cpu_data());
    std::vector<caffe::Blob<float>*> bottoms{&bottom}, tops{&top};
    layer->SetUp(bottoms, tops);
    weights = random_values(layer->blobs()[0]->count(), seed + 1);
    std::copy(weights.begin(), weights.end(), layer->blobs()[0]->mutable_cpu_data());
    layer->Forward(bottoms, tops);
    output.assign(top.cpu_data(), top.cpu_data() + top.count());
  }
};

// c (m x n) = a (m x k) b (k x n) as Caffe's layer computes a fully
// connected convolution's product (patches 0012 and 0024): by oneDNN's
// matmul where it has a brgemm kernel on this CPU, else by the streamed
// GEMM. false where neither takes it.
inline bool fully_connected_product(int m, int n, int k, const float* a, const float* b,
                                    float* c) {
  caffe::OnednnMatmul matmul;
  return matmul.Forward(m, n, k, a, b, c) ||
         caffe::streamed_gemm<float>(1, m, n, k, {a, k, 0}, {b, n, 0}, {c, n, 0});
}

}  // namespace surgery::test

#endif  // SURGERY_TESTS_ONE_BY_ONE_CONVOLUTION_HPP_
