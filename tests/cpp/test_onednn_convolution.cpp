// Recipe patch 0021: a convolution whose product patch 0020 gives oneDNN's
// sgemm after im2col runs whole by oneDNN's direct convolution
// (caffe::OnednnConvolution) instead: Caffe's layer gives its output bit for
// bit, within 1e-5 of the output's scale of the sum computed directly in
// double (strides, pads, dilations, groups, bias, batches, a 3-channel first
// layer); a taller product keeps im2col and BLAS; the sums are the
// same on any thread count, for an image alone or in a batch, and for the
// cells of a crop (no padding); a child forked after it ran gets the same
// bits instead of waiting for OpenMP's threads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "caffe/layer_factory.hpp"
#include "caffe/util/im2col.hpp"
#include "caffe/util/math_functions.hpp"
#include "caffe/util/onednn_convolution.hpp"
#include "caffe/util/onednn_gemm.hpp"
#include "caffe/util/parallel.hpp"
#include "one_by_one_convolution.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

using Floats = std::vector<float>;

// A geometry by its input and its window (square kernels, strides, pads).
caffe::ConvolutionGeometry geometry(int num, int channels, int side, int outputs, int kernel,
                                    int stride, int pad, int group, bool bias,
                                    int dilation = 1) {
  caffe::ConvolutionGeometry g;
  g.num = num;
  g.channels = channels;
  g.height = g.width = side;
  g.out_channels = outputs;
  g.out_height = g.out_width = (side + 2 * pad - (dilation * (kernel - 1) + 1)) / stride + 1;
  g.kernel_h = g.kernel_w = kernel;
  g.stride_h = g.stride_w = stride;
  g.pad_h = g.pad_w = pad;
  g.dilation_h = g.dilation_w = dilation;
  g.group = group;
  g.bias = bias;
  return g;
}

long input_count(const caffe::ConvolutionGeometry& g) {
  return long(g.num) * g.channels * g.height * g.width;
}
long output_count(const caffe::ConvolutionGeometry& g) {
  return long(g.num) * g.out_channels * g.out_height * g.out_width;
}
long weight_count(const caffe::ConvolutionGeometry& g) {
  return long(g.out_channels) * g.channels / g.group * g.kernel_h * g.kernel_w;
}

// A convolution's operands, and Caffe's Convolution layer on them.
struct Convolution {
  caffe::ConvolutionGeometry g;
  Floats input, weights, bias;
  explicit Convolution(const caffe::ConvolutionGeometry& geometry, unsigned seed = 1)
      : g(geometry),
        input(random_values(input_count(g), seed)),
        weights(random_values(weight_count(g), seed + 1)),
        bias(g.bias ? random_values(g.out_channels, seed + 2) : Floats()) {}

  Floats layer_output() const {
    caffe::LayerParameter param;
    param.set_name("conv");
    param.set_type("Convolution");
    caffe::ConvolutionParameter& p = *param.mutable_convolution_param();
    p.set_num_output(g.out_channels);
    p.add_kernel_size(g.kernel_h);
    p.add_stride(g.stride_h);
    p.add_pad(g.pad_h);
    p.add_dilation(g.dilation_h);
    p.set_group(g.group);
    p.set_bias_term(g.bias);
    auto layer = caffe::LayerRegistry<float>::CreateLayer(param);
    caffe::Blob<float> bottom(g.num, g.channels, g.height, g.width), top;
    std::copy(input.begin(), input.end(), bottom.mutable_cpu_data());
    std::vector<caffe::Blob<float>*> bottoms{&bottom}, tops{&top};
    layer->SetUp(bottoms, tops);
    std::copy(weights.begin(), weights.end(), layer->blobs()[0]->mutable_cpu_data());
    if (g.bias) std::copy(bias.begin(), bias.end(), layer->blobs()[1]->mutable_cpu_data());
    layer->Forward(bottoms, tops);
    return Floats(top.cpu_data(), top.cpu_data() + top.count());
  }

  Floats direct_output() const {
    Floats out(output_count(g));
    caffe::OnednnConvolution direct;
    EXPECT_TRUE(direct.Forward(g, input.data(), weights.data(), g.bias ? bias.data() : nullptr,
                               out.data()));
    return out;
  }

  // The definition, summed in double.
  std::vector<double> sums() const {
    std::vector<double> out(output_count(g));
    const int per_group_in = g.channels / g.group, per_group_out = g.out_channels / g.group;
    long i = 0;
    for (int n = 0; n < g.num; ++n) {
      for (int o = 0; o < g.out_channels; ++o) {
        for (int y = 0; y < g.out_height; ++y) {
          for (int x = 0; x < g.out_width; ++x, ++i) {
            double sum = g.bias ? bias[o] : 0.0;
            for (int c = 0; c < per_group_in; ++c) {
              const int channel = o / per_group_out * per_group_in + c;
              for (int ky = 0; ky < g.kernel_h; ++ky) {
                const int iy = y * g.stride_h - g.pad_h + ky * g.dilation_h;
                if (iy < 0 || iy >= g.height) continue;
                for (int kx = 0; kx < g.kernel_w; ++kx) {
                  const int ix = x * g.stride_w - g.pad_w + kx * g.dilation_w;
                  if (ix < 0 || ix >= g.width) continue;
                  sum += double{weights[((long(o) * per_group_in + c) * g.kernel_h + ky) *
                                            g.kernel_w + kx]} *
                         input[((long(n) * g.channels + channel) * g.height + iy) * g.width + ix];
                }
              }
            }
            out[i] = sum;
          }
        }
      }
    }
    return out;
  }
};

bool same_bits(const Floats& a, const Floats& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class OnednnConvolution : public ::testing::Test {
 protected:
  void TearDown() override { caffe::set_parallel_threads(0); }
};

TEST_F(OnednnConvolution, CaffesLayerIsTheDirectConvolutionAndItsSumsHold) {
  for (const auto& g : {
           geometry(1, 3, 67, 16, 11, 4, 0, 1, true),      // conv1's stride 4, 3 channels
           geometry(2, 32, 27, 48, 5, 1, 2, 2, true),      // conv2's pad and groups, a batch
           geometry(1, 64, 13, 32, 3, 1, 1, 1, false),     // conv3's window, no bias
           geometry(3, 16, 21, 16, 3, 1, 2, 1, true, 2),   // dilation 2
           geometry(1, 17, 30, 24, 4, 2, 1, 1, true),      // odd channels, even kernel
           geometry(2, 32, 15, 64, 3, 1, 1, 2, true),      // groups of 16 channels in blocks
       }) {
    const Convolution conv(g);
    const Floats layer = conv.layer_output();
    EXPECT_TRUE(same_bits(layer, conv.direct_output()))
        << g.channels << " channels, kernel " << g.kernel_h;
    const std::vector<double> sums = conv.sums();
    double gap = 0, scale = 0;
    for (size_t i = 0; i < sums.size(); ++i) {
      gap = std::max(gap, std::fabs(layer[i] - sums[i]));
      scale = std::max(scale, std::fabs(sums[i]));
    }
    EXPECT_LT(gap, 1e-5 * scale) << g.channels << " channels, kernel " << g.kernel_h;
  }
}

TEST_F(OnednnConvolution, ATallerProductKeepsIm2colAndBlas) {
  // 64 outputs on 6x6 = 36 pixels: taller than wide, so BLAS after im2col.
  const Convolution conv(geometry(1, 32, 8, 64, 3, 1, 0, 1, false));
  Floats columns(32L * 9 * 36), expected(64L * 36);
  caffe::im2col_cpu(conv.input.data(), 32, 8, 8, 3, 3, 0, 0, 1, 1, 1, 1, columns.data());
  caffe::caffe_cpu_gemm<float>(CblasNoTrans, CblasNoTrans, 64, 36, 32 * 9, 1.f,
                               conv.weights.data(), columns.data(), 0.f, expected.data());
  EXPECT_TRUE(same_bits(conv.layer_output(), expected));
}

TEST_F(OnednnConvolution, SameSumsOnAnyThreadsAloneOrInABatch) {
  // CaffeNet's conv1 and conv2 (its groups and pad), on smaller maps.
  for (const auto& g : {geometry(3, 3, 91, 96, 11, 4, 0, 1, true),
                        geometry(3, 96, 27, 256, 5, 1, 2, 2, true)}) {
    const Convolution batch(g);
    caffe::set_parallel_threads(1);
    const Floats one = batch.direct_output();
    for (int threads : {2, 3}) {
      caffe::set_parallel_threads(threads);
      EXPECT_TRUE(same_bits(one, batch.direct_output())) << threads << " threads";
    }
    // The second image alone.
    caffe::ConvolutionGeometry single = g;
    single.num = 1;
    Convolution alone(single);
    const long in = input_count(single), out = output_count(single);
    std::copy(batch.input.begin() + in, batch.input.begin() + 2 * in, alone.input.begin());
    alone.weights = batch.weights;
    alone.bias = batch.bias;
    EXPECT_TRUE(same_bits(alone.direct_output(), Floats(one.begin() + out, one.begin() + 2 * out)));
  }
}

TEST_F(OnednnConvolution, ACropWithoutPaddingGivesTheLargerImagesCells) {
  // conv1's 3 channels read as they are, and 32 channels in blocks of 16.
  using Crop = std::pair<caffe::ConvolutionGeometry, caffe::ConvolutionGeometry>;
  for (const auto& [large, small] : {Crop{geometry(1, 3, 91, 96, 11, 4, 0, 1, true),
                                          geometry(1, 3, 51, 96, 11, 4, 0, 1, true)},
                                     Crop{geometry(1, 32, 29, 48, 3, 1, 0, 1, true),
                                          geometry(1, 32, 17, 48, 3, 1, 0, 1, true)}}) {
    const Convolution whole(large);
    Convolution crop(small);
    crop.weights = whole.weights;
    crop.bias = whole.bias;
    for (int c = 0; c < large.channels; ++c) {
      for (int y = 0; y < small.height; ++y) {
        std::copy_n(whole.input.begin() + (c * long{large.height} + y) * large.width, small.width,
                    crop.input.begin() + (c * long{small.height} + y) * small.width);
      }
    }
    const Floats big = whole.direct_output(), cells = crop.direct_output();
    long differing = 0;
    for (int o = 0; o < large.out_channels; ++o) {
      for (int y = 0; y < small.out_height; ++y) {
        for (int x = 0; x < small.out_width; ++x) {
          differing += std::memcmp(&cells[(o * small.out_height + y) * small.out_width + x],
                                   &big[(o * large.out_height + y) * large.out_width + x],
                                   sizeof(float)) != 0;
        }
      }
    }
    EXPECT_EQ(differing, 0) << large.channels << " channels";
  }
}

TEST_F(OnednnConvolution, AChildForkedAfterItRanGetsTheSameBits) {
  const Convolution conv(geometry(1, 96, 27, 256, 5, 1, 2, 2, true));
  caffe::set_parallel_threads(2);
  const Floats parent = conv.direct_output();
  const pid_t pid = fork();
  ASSERT_NE(pid, -1);
  if (pid == 0) _exit(same_bits(parent, conv.direct_output()) ? 0 : 4);
  EXPECT_EQ(wait_for_child(pid), 0) << "-1: the child hung";
}

}  // namespace
}  // namespace surgery::test
