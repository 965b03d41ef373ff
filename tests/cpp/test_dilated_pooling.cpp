// DilatedPooling against Caffe's own Pooling: with dilation 1 it is Pooling,
// and with dilation d, stride 1 and pad d * p, each of its d x d phases
// (rows h % d, columns w % d) is Pooling with stride 1 and pad p run on
// that phase of the input (the identity filter rarefaction relies on).
// Odd sizes, pads, ceil and floor rounding, MAX and AVE. Python checks it
// against a numpy reference for strides and pads of any kind. Its GPU
// forward is checked against the CPU one (skipped without a GPU).
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <random>

#include "caffe/layer_factory.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/definition/parameter_checks.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/layers/dilated_pooling.hpp"
#include "surgery/layers/library_layers.hpp"
#include "surgery/runtime/device.hpp"

namespace surgery::test {
namespace {

using Blob = caffe::Blob<float>;

caffe::LayerParameter pooling(const std::string& method, int kernel, int stride, int pad,
                              bool ceil, int dilation) {
  caffe::LayerParameter p;
  p.set_name("pool");
  p.set_type(dilation > 0 ? kDilatedPoolingType : "Pooling");
  auto* pp = p.mutable_pooling_param();
  pp->set_pool(method == "MAX" ? caffe::PoolingParameter::MAX : caffe::PoolingParameter::AVE);
  pp->set_kernel_size(kernel);
  pp->set_stride(stride);
  pp->set_pad(pad);
  pp->set_ceil_mode(ceil);
  if (dilation > 0) p.mutable_convolution_param()->add_dilation(dilation);
  return p;
}

// Runs one layer on `in` (a layer of our registry or Caffe's).
void run(const caffe::LayerParameter& param, Blob& in, Blob& out) {
  register_library_layers();
  auto layer = caffe::LayerRegistry<float>::CreateLayer(param);
  std::vector<Blob*> bottom{&in}, top{&out};
  layer->SetUp(bottom, top);
  layer->Forward(bottom, top);
}

void randomize(Blob& blob, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  float* d = blob.mutable_cpu_data();
  for (int i = 0; i < blob.count(); ++i) d[i] = normal(gen);
}

// Rows h0, h0 + d, ... and columns w0, w0 + d, ... of `in`.
void phase(const Blob& in, int d, int h0, int w0, Blob& out) {
  const int H = (in.height() - h0 + d - 1) / d, W = (in.width() - w0 + d - 1) / d;
  out.Reshape({in.num(), in.channels(), H, W});
  for (int n = 0; n < in.num(); ++n) {
    for (int c = 0; c < in.channels(); ++c) {
      for (int h = 0; h < H; ++h) {
        for (int w = 0; w < W; ++w) {
          out.mutable_cpu_data()[out.offset(n, c, h, w)] =
              in.cpu_data()[in.offset(n, c, h0 + h * d, w0 + w * d)];
        }
      }
    }
  }
}

TEST(DilatedPooling, DilationOneIsCaffesPooling) {
  for (const char* method : {"MAX", "AVE"}) {
    for (bool ceil : {true, false}) {
      for (int pad : {0, 1, 2}) {
        Blob in(std::vector<int>{2, 3, 11, 8}), ours, caffes;
        randomize(in, 7 + pad);
        run(pooling(method, 3, 2, pad, ceil, 1), in, ours);
        run(pooling(method, 3, 2, pad, ceil, 0), in, caffes);
        ASSERT_EQ(ours.shape(), caffes.shape()) << method << " pad " << pad << " ceil " << ceil;
        for (int i = 0; i < ours.count(); ++i) {
          ASSERT_FLOAT_EQ(ours.cpu_data()[i], caffes.cpu_data()[i]) << method << " cell " << i;
        }
      }
    }
  }
}

TEST(DilatedPooling, EachPhaseIsCaffesPoolingOnThatPhase) {
  for (const char* method : {"MAX", "AVE"}) {
    for (int d : {2, 3}) {
      for (int pad : {0, 1}) {
        for (int kernel : {2, 3}) {
          Blob in(std::vector<int>{1, 2, 13, 10}), ours;
          randomize(in, 100 * d + 10 * pad + kernel);
          run(pooling(method, kernel, 1, d * pad, true, d), in, ours);
          int cells = 0;
          for (int h0 = 0; h0 < d; ++h0) {
            for (int w0 = 0; w0 < d; ++w0) {
              Blob part, caffes;
              phase(in, d, h0, w0, part);
              run(pooling(method, kernel, 1, pad, true, 0), part, caffes);
              for (int c = 0; c < 2; ++c) {
                for (int h = 0; h < caffes.height(); ++h) {
                  for (int w = 0; w < caffes.width(); ++w) {
                    const int H = h0 + h * d, W = w0 + w * d;
                    ASSERT_LT(H, ours.height());
                    ASSERT_LT(W, ours.width());
                    ASSERT_NEAR(ours.cpu_data()[ours.offset(0, c, H, W)],
                                caffes.cpu_data()[caffes.offset(0, c, h, w)], 1e-6)
                        << method << " d " << d << " pad " << pad << " k " << kernel;
                    ++cells;
                  }
                }
              }
            }
          }
          EXPECT_EQ(cells, ours.count()) << "every cell belongs to one phase";
        }
      }
    }
  }
}

TEST(DilatedPooling, ParameterChecksRefuseWhatItCannotRun) {
  const auto refused = [](const std::string& pooling, const std::string& convolution) {
    const auto layer = parse_net_text("layer { name: 'p' type: 'DilatedPooling' bottom: 'x' "
                                      "top: 'y' pooling_param { kernel_size: 3 " + pooling +
                                          " } " + convolution + " }",
                                      "t.prototxt")
                           .layer(0);
    try {
      check_layer_parameters(layer, "t.prototxt", {4});
    } catch (const NetDefinitionError& e) {
      EXPECT_NE(std::string(e.what()).find("'p'"), std::string::npos) << e.what();
      return true;
    }
    return false;
  };
  const std::string two = "convolution_param { dilation: 2 }";
  EXPECT_FALSE(refused("pad: 4", two));  // below the dilated extent, 5
  EXPECT_FALSE(refused("pool: AVE pad_h: 1 pad_w: 0", two));
  EXPECT_TRUE(refused("pad: 5", two));
  EXPECT_TRUE(refused("", ""));  // no dilation
  EXPECT_TRUE(refused("", "convolution_param { dilation: 0 }"));
  EXPECT_TRUE(refused("", "convolution_param { dilation: 2 num_output: 3 }"));
  EXPECT_TRUE(refused("", "convolution_param { dilation: 2 dilation: 2 dilation: 2 }"));
  EXPECT_TRUE(refused("", "convolution_param { dilation: 4294967295 }"));
  EXPECT_TRUE(refused("pool: STOCHASTIC", two));
  EXPECT_TRUE(refused("global_pooling: true", two));
  EXPECT_TRUE(refused("stride: 0", two));
  EXPECT_TRUE(refused("pad: 1 pad_h: 1", two));
}

// Whether some window of one axis has no tap inside an input of `in` cells,
// by enumerating every tap of every window Reshape gives.
bool some_window_misses(int in, int out, int kernel, int stride, int pad, int dilation) {
  for (int o = 0; o < out; ++o) {
    bool hit = false;
    for (int i = 0; i < kernel; ++i) {
      const int y = o * stride - pad + i * dilation;
      hit = hit || (y >= 0 && y < in);
    }
    if (!hit) return true;
  }
  return false;
}

// A window whose taps all miss the input has no value to pool (MAX gave
// -FLT_MAX, AVE 0): such inputs are refused at reshape, with the layer and
// the remedy named, and every other input pools at least one real value.
TEST(DilatedPooling, WindowsThatMissTheInputAreRefused) {
  const auto refusal = [](int kernel, int stride, int pad, int dilation, bool ceil, int h,
                          int w) -> std::string {
    Blob in(std::vector<int>{1, 1, h, w}), out;
    try {
      run(pooling("MAX", kernel, stride, pad, ceil, dilation), in, out);
    } catch (const ShapeError& e) {
      return e.what();
    }
    return "";
  };
  // Pad at or above the dilation on a one-row input: window 0 starts at -3,
  // its taps -3, -1, 1 skip the only row.
  const auto above = refusal(3, 1, 3, 2, true, 1, 8);
  EXPECT_NE(above.find("'pool'"), std::string::npos) << above;
  EXPECT_NE(above.find("at least 2 rows"), std::string::npos) << above;
  // Pad below the dilation misses too: taps -1 and 3 around an input of 3.
  EXPECT_NE(refusal(2, 1, 1, 4, true, 8, 3).find("at least 4 columns"), std::string::npos);
  // Unpadded, rounded up, stride 4 over a window of 3: the last window starts at 16.
  EXPECT_NE(refusal(2, 4, 0, 2, true, 16, 16).find("ceil_mode: false"), std::string::npos);
  EXPECT_EQ(refusal(2, 4, 0, 2, false, 16, 16), "");

  // Every small geometry and input, against the enumeration of taps above.
  int refused = 0, pooled = 0;
  for (int kernel = 1; kernel <= 3; ++kernel) {
    for (int dilation = 1; dilation <= 4; ++dilation) {
      for (int pad = 0; pad < dilation * (kernel - 1) + 1; ++pad) {
        for (int stride = 1; stride <= 5; ++stride) {
          for (bool ceil : {true, false}) {
            for (int size = 1; size <= 9; ++size) {
              const PoolingAxis axis{kernel, stride, pad, dilation, ceil};
              const int out = static_cast<int>(pooled_size(size, axis));
              if (out < 1) continue;
              const bool misses = some_window_misses(size, out, kernel, stride, pad, dilation);
              Blob in(std::vector<int>{1, 1, size, size}), top;  // both axes alike
              randomize(in, size);
              const auto label = "k" + std::to_string(kernel) + " s" + std::to_string(stride) +
                                 " p" + std::to_string(pad) + " d" + std::to_string(dilation) +
                                 (ceil ? " ceil" : " floor") + " in " + std::to_string(size);
              try {
                run(pooling("MAX", kernel, stride, pad, ceil, dilation), in, top);
              } catch (const ShapeError&) {
                EXPECT_TRUE(misses) << label << " refused, but every window has a tap";
                ++refused;
                continue;
              }
              EXPECT_FALSE(misses) << label << " accepted with a window that misses the input";
              for (int i = 0; i < top.count(); ++i) {
                ASSERT_GT(top.cpu_data()[i], -FLT_MAX) << label << " cell " << i;
              }
              ++pooled;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(pooled, refused);
}

// Caffe's mode is per thread; this one goes back to CPU mode however the block ends.
struct GpuMode {
  GpuMode() { set_mode("gpu"); }
  ~GpuMode() { set_mode("cpu"); }
};

// The GPU forward (dilated_pooling.cu) against the CPU forward, cell by
// cell: dilation 2 and 4 as rarefy makes them, pads up to the dilated
// extent, ceil and floor rounding, a stride above the dilated window, odd sizes and more than one block of threads. The bottom
// starts on the device; Caffe's fallback to Forward_cpu would leave it
// "synced" and the top "cpu", so both still "gpu" shows nothing went
// through the host.
TEST(DilatedPooling, GpuForwardEqualsCpuForwardAndStaysOnTheDevice) {
  if (!gpu_available()) GTEST_SKIP() << "no CUDA device, or libcaffe built without CUDA";
  struct Case {
    int kernel, stride, pad, dilation;
    bool ceil;
    int height, width;
  };
  // {2, 4, 0, 2}: a stride above the dilated window, taps skipped between windows.
  const Case cases[] = {{3, 1, 0, 2, true, 17, 13}, {3, 1, 2, 2, true, 18, 14},
                        {3, 2, 1, 2, false, 19, 15}, {2, 1, 4, 4, true, 17, 16},
                        {3, 1, 8, 4, true, 18, 13}, {2, 3, 3, 4, false, 19, 14},
                        {2, 4, 0, 2, true, 17, 15}, {3, 1, 4, 4, false, 21, 11}};
  unsigned seed = 0;
  for (const char* method : {"MAX", "AVE"}) {
    for (const Case& c : cases) {
      const std::string label = std::string(method) + " k" + std::to_string(c.kernel) + " s" +
                                std::to_string(c.stride) + " p" + std::to_string(c.pad) + " d" +
                                std::to_string(c.dilation) + (c.ceil ? " ceil" : " floor");
      const auto param = pooling(method, c.kernel, c.stride, c.pad, c.ceil, c.dilation);
      Blob in(std::vector<int>{2, 3, c.height, c.width}), cpu_out, gpu_out;
      randomize(in, ++seed);
      run(param, in, cpu_out);
      {
        GpuMode gpu;
        in.mutable_gpu_data();  // head "gpu": the data lives on the device only
        run(param, in, gpu_out);
      }
      EXPECT_EQ(head_of(in), "gpu") << label;
      EXPECT_EQ(head_of(gpu_out), "gpu") << label;
      ASSERT_EQ(gpu_out.shape(), cpu_out.shape()) << label;
      const float* got = gpu_out.cpu_data();
      const float* want = cpu_out.cpu_data();
      for (int i = 0; i < cpu_out.count(); ++i) {
        if (std::string(method) == "MAX") {
          ASSERT_EQ(got[i], want[i]) << label << " cell " << i;
        } else {
          ASSERT_LE(std::abs(got[i] - want[i]), 1e-6f * std::abs(want[i]))
              << label << " cell " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace surgery::test
