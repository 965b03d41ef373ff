// Modes and where blob data lives. The GPU tests skip without a CUDA
// libcaffe and a visible device (CI has neither); they run on a GPU machine.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "caffe/memory_budget.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/edit/fully_convolutional.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/runtime/device.hpp"
#include "surgery/runtime/pinned_memory.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

#define SKIP_WITHOUT_GPU()                                                   \
  if (!gpu_available()) {                                                    \
    GTEST_SKIP() << "no CUDA device, or libcaffe built without CUDA";       \
  }

// Caffe's mode is per thread; every test leaves this thread in CPU mode.
struct GpuMode {
  GpuMode() { set_mode("gpu"); }
  ~GpuMode() { set_mode("cpu"); }
};

// He-scaled normal weights, small biases: a random net with sane activations.
void randomize(Net& net, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (const auto& layer : net.layers()) {
    for (const auto& blob : net.params(layer.name)) {
      const float scale =
          blob->num_axes() > 1 ? std::sqrt(2.f / blob->count(1)) : 0.01f;
      float* data = blob->mutable_cpu_data();
      for (int i = 0; i < blob->count(); ++i) data[i] = normal(rng) * scale;
    }
  }
}

void copy_params(const Net& from, Net& to) {
  for (const auto& layer : from.layers()) {
    const auto& src = from.params(layer.name);
    const auto& dst = to.params(layer.name);
    for (size_t i = 0; i < src.size(); ++i) dst[i]->CopyFrom(*src[i]);
  }
}

std::vector<std::string> all_param_heads(const Net& net) {
  std::vector<std::string> heads;
  for (const auto& layer : net.layers()) {
    for (const auto& blob : net.params(layer.name)) heads.push_back(head_of(*blob));
  }
  return heads;
}

std::vector<float> output(const Net& net, const std::string& name) {
  const auto& blob = net.blob(name);
  return {blob.cpu_data(), blob.cpu_data() + blob.count()};
}

TEST(Device, CpuModeAndClearErrorsWithoutGpu) {
  set_mode("cpu");
  EXPECT_EQ(mode(), "cpu");
  try {
    set_mode("tpu");
    FAIL() << "an unknown mode was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'cpu' or 'gpu'"), std::string::npos) << e.what();
  }
  if (gpu_available()) return;
  EXPECT_THROW(set_mode("gpu"), Error);
  EXPECT_THROW(set_device(0), Error);
  EXPECT_THROW(set_tf32(true), Error);
  set_tf32(false);
  EXPECT_EQ(mode(), "cpu");
  EXPECT_FALSE(tf32());
}

// The issue's proof: CaffeNet, random weights, converted while its params
// live on the GPU. Every param head is "gpu" before surgery (as after a GPU
// solver step); a device-to-host copy would turn one into "synced", so all
// still being "gpu" afterwards shows none happened. The 451x451 map then
// matches the same net converted and run on the CPU.
TEST(Device, CaffeNetSurgeryOnGpuCopiesNothingToTheHostAndMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const auto prototxt = fixtures() / "bvlc_reference_caffenet" / "deploy.prototxt";
  SKIP_WITHOUT_FIXTURE(prototxt);
  std::vector<float> image(3 * 451 * 451);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> pixel(-100.f, 100.f);
  for (float& v : image) v = pixel(rng);
  const InputView input{{1, 3, 451, 451}, image.data()};

  Net cpu(prototxt.string());
  randomize(cpu, 1);
  Net gpu(prototxt.string());
  copy_params(cpu, gpu);
  fully_convolutionalize(cpu);
  cpu.forward({{"data", input}});
  const std::vector<float> expected = output(cpu, "prob");

  GpuMode mode;
  std::vector<float> zeros(3 * 227 * 227, 0.f);
  gpu.forward({{"data", {{1, 3, 227, 227}, zeros.data()}}});  // uploads the params
  for (const auto& layer : gpu.layers()) {
    for (const auto& blob : gpu.params(layer.name)) blob->mutable_gpu_data();
  }
  const auto before = all_param_heads(gpu);
  ASSERT_EQ(before.size(), 16u);
  ASSERT_TRUE(std::all_of(before.begin(), before.end(), [](auto& h) { return h == "gpu"; }));
  const float* fc6_weights = gpu.params("fc6")[0]->gpu_data();

  const SurgeryReport report = fully_convolutionalize(gpu);
  ASSERT_EQ(report.layers.size(), 3u);
  EXPECT_EQ(all_param_heads(gpu), before);
  EXPECT_EQ(gpu.params("fc6-conv")[0]->gpu_data(), fc6_weights);  // same device memory
  EXPECT_EQ(gpu.params("fc6-conv")[0]->shape(), (std::vector<int>{4096, 256, 6, 6}));

  gpu.forward({{"data", input}});
  EXPECT_EQ(all_param_heads(gpu), before);
  EXPECT_EQ(head_of(gpu.blob("data")), "gpu");  // the input went straight to the device
  EXPECT_EQ(head_of(gpu.blob("fc7-conv")), "gpu");  // only what is read comes back
  const std::vector<float> got = output(gpu, "prob");
  EXPECT_EQ(head_of(gpu.blob("prob")), "synced");
  ASSERT_EQ(gpu.blob("prob").shape(), (std::vector<int>{1, 1000, 8, 8}));
  ASSERT_EQ(got.size(), expected.size());
  float worst = 0.f;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - expected[i]));
  EXPECT_LE(worst, 1e-4f);
}

// The fork's ReLU GPU forward copied its input to the host and waited for
// it, every pass (our recipe's patch 0010 removes the stray line): a blob
// that only device code writes and reads gets no host memory in a forward.
TEST(Device, ReluForwardCopiesNothingToTheHost) {
  SKIP_WITHOUT_GPU();
  const std::string def = R"(
    layer { name: "data" type: "Input" top: "data"
            input_param { shape { dim: 1 dim: 4 dim: 32 dim: 32 } } }
    layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
            convolution_param { num_output: 8 kernel_size: 3 } }
    layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
    layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
            pooling_param { pool: MAX kernel_size: 2 stride: 2 } })";
  GpuMode mode;
  Net net(parse_net_text(def, "relu"), "relu");
  randomize(net, 5);
  std::vector<float> image(4 * 32 * 32, 1.f);
  // Host bytes Caffe holds: the params (filled on the host) and the
  // convolution's bias multiplier, set up before any forward.
  const size_t host_before = caffe::MemoryBudget::InUse(false);
  net.forward({{"data", {{1, 4, 32, 32}, image.data()}}});
  EXPECT_EQ(caffe::MemoryBudget::InUse(false), host_before)
      << "a forward allocated host memory: some layer copied a device blob back";
  EXPECT_EQ(head_of(net.blob("conv")), "gpu");
}

// Our recipe's GPU kernels (patch cuda/0006) against Caffe's CPU layers:
// the bias kernel of a convolution (two images), LRN's scale with a thread
// per value (across 96 channels, and 16 with a window of 3), and Softmax with a block per softmax (1000 classes) beside Caffe's own
// kernels (16 channels).
TEST(Device, RecipeKernelsEqualTheCpuLayers) {
  SKIP_WITHOUT_GPU();
  const std::string def = R"(
    layer { name: "data" type: "Input" top: "data"
            input_param { shape { dim: 2 dim: 96 dim: 9 dim: 9 } } }
    layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
            convolution_param { num_output: 1000 kernel_size: 3 } }
    layer { name: "prob" type: "Softmax" bottom: "conv" top: "prob" }
    layer { name: "norm" type: "LRN" bottom: "data" top: "norm"
            lrn_param { local_size: 5 alpha: 0.5 beta: 0.75 k: 2 } }
    layer { name: "small" type: "Convolution" bottom: "data" top: "small"
            convolution_param { num_output: 16 kernel_size: 1 } }
    layer { name: "small_norm" type: "LRN" bottom: "small" top: "small_norm"
            lrn_param { local_size: 3 alpha: 0.3 beta: 0.6 } }
    layer { name: "small_prob" type: "Softmax" bottom: "small_norm" top: "small_prob" })";
  Net cpu(parse_net_text(def, "kernels"), "kernels");
  randomize(cpu, 11);
  // Biases as large as the weights' sums, so that a missing bias shows.
  for (const char* name : {"conv", "small"}) {
    float* bias = cpu.params(name)[1]->mutable_cpu_data();
    for (int i = 0; i < cpu.params(name)[1]->count(); ++i) bias[i] = 0.5f * ((i % 7) - 3);
  }
  Net gpu(parse_net_text(def, "kernels"), "kernels");
  copy_params(cpu, gpu);
  std::vector<float> image(2 * 96 * 9 * 9);
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> value(-3.f, 3.f);
  for (float& v : image) v = value(rng);
  const InputView input{{2, 96, 9, 9}, image.data()};
  cpu.forward({{"data", input}});
  {
    GpuMode mode;
    gpu.forward({{"data", input}});
  }
  for (const char* name : {"conv", "prob", "norm", "small", "small_norm", "small_prob"}) {
    const std::vector<float> want = output(cpu, name), got = output(gpu, name);
    ASSERT_EQ(got.size(), want.size()) << name;
    float worst = 0.f;
    for (size_t i = 0; i < got.size(); ++i) {
      worst = std::max(worst, std::abs(got[i] - want[i]) / std::max(1.f, std::abs(want[i])));
    }
    EXPECT_LE(worst, 1e-5f) << name;
  }
  // Each softmax sums to one.
  const std::vector<float> prob = output(gpu, "prob");
  for (int n = 0; n < 2; ++n) {
    for (int s = 0; s < 49; ++s) {
      double sum = 0;
      for (int c = 0; c < 1000; ++c) sum += prob[(n * 1000 + c) * 49 + s];
      EXPECT_NEAR(sum, 1.0, 1e-5) << "image " << n << " pixel " << s;
    }
  }
}

// Page-locked host memory: refused without a GPU; with one, the driver
// calls it host memory it can copy from, and the memory limit counts it
// while a shared owner holds it.
TEST(Device, PinnedFloatsArePageLockedAndCounted) {
  if (!gpu_available()) {
    EXPECT_THROW(pinned_floats({16}), Error);
    EXPECT_FALSE(is_pinned(this));
    return;
  }
  const size_t before = caffe::MemoryBudget::InUse(false);
  std::shared_ptr<float> buffer = pinned_floats({1 << 20});
  ASSERT_TRUE(buffer);
  EXPECT_TRUE(is_pinned(buffer.get()));
  std::vector<float> ordinary(16);
  EXPECT_FALSE(is_pinned(ordinary.data()));
  EXPECT_EQ(caffe::MemoryBudget::InUse(false), before + (4u << 20));
  std::shared_ptr<float> second_owner = buffer;
  buffer.reset();
  EXPECT_EQ(caffe::MemoryBudget::InUse(false), before + (4u << 20));
  second_owner.reset();
  EXPECT_EQ(caffe::MemoryBudget::InUse(false), before);
}

// transpose: true is the one case that rearranges weights: on the GPU it
// happens there (cuBLAS geam), leaving the head "gpu".
TEST(Device, TransposedWeightsAreRearrangedOnTheDevice) {
  SKIP_WITHOUT_GPU();
  const std::string def = R"(
    layer { name: "data" type: "Input" top: "data"
            input_param { shape { dim: 1 dim: 2 dim: 3 dim: 3 } } }
    layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
            inner_product_param { num_output: 5 transpose: true } })";
  Net cpu(parse_net_text(def, "t"), "t");
  randomize(cpu, 3);
  Net gpu(parse_net_text(def, "t"), "t");
  copy_params(cpu, gpu);
  fully_convolutionalize(cpu);

  GpuMode mode;
  gpu.params("fc")[0]->mutable_gpu_data();
  fully_convolutionalize(gpu);
  const auto& weights = *gpu.params("fc-conv")[0];
  EXPECT_EQ(head_of(weights), "gpu");
  EXPECT_EQ(weights.shape(), (std::vector<int>{5, 2, 3, 3}));
  const auto& reference = *cpu.params("fc-conv")[0];
  const std::vector<float> got(weights.cpu_data(), weights.cpu_data() + weights.count());
  EXPECT_EQ(got, std::vector<float>(reference.cpu_data(), reference.cpu_data() + reference.count()));
}

}  // namespace
}  // namespace surgery::test
