// Recipe patch 0020: a convolution's forward GEMM by oneDNN's sgemm
// (caffe::onednn_sgemm): the layer's output is that product bit for bit,
// and BLAS's where the product is taller than wide (fully connected layers
// of several images); the sums are the same on any number of threads, CaffeNet's shapes
// included; a child forked after it ran gets the same bits on one thread
// instead of waiting forever for GNU OpenMP's threads, which fork() drops;
// while oneDNN runs, asynchronous signals wait (its JIT GEMM kernels let a
// handler's frame overwrite the heap: test_runtime.py's storm of signals).
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <random>
#include <vector>

#include "caffe/layer_factory.hpp"
#include "caffe/util/math_functions.hpp"
#include "caffe/util/onednn_gemm.hpp"
#include "caffe/util/parallel.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

std::vector<float> random_values(long count, unsigned seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal;
  std::vector<float> values(count);
  for (float& v : values) v = normal(generator);
  return values;
}

struct Product {
  int m, n, k;
  std::vector<float> a, b;
  Product(int m_, int n_, int k_)
      : m(m_), n(n_), k(k_), a(random_values(long(m) * k, 1)), b(random_values(long(k) * n, 2)) {}
  std::vector<float> on_threads(int threads) const {
    caffe::set_parallel_threads(threads);
    std::vector<float> c(long(m) * n);
    EXPECT_TRUE(caffe::onednn_sgemm(m, n, k, a.data(), b.data(), c.data()));
    return c;
  }
};

class OnednnGemm : public ::testing::Test {
 protected:
  void TearDown() override { caffe::set_parallel_threads(0); }
};

// A 1x1 convolution without bias of one image (im2col's columns are the
// input itself), with weights far below the streamed GEMM's floor: its
// output, and its weights and input for a product of one's own.
struct OneByOne {
  std::vector<float> input, weights, output;
  OneByOne(int outputs, int channels, int side) {
    caffe::LayerParameter param;
    param.set_name("conv");
    param.set_type("Convolution");
    param.mutable_convolution_param()->set_num_output(outputs);
    param.mutable_convolution_param()->add_kernel_size(1);
    param.mutable_convolution_param()->set_bias_term(false);
    auto layer = caffe::LayerRegistry<float>::CreateLayer(param);
    caffe::Blob<float> bottom(1, channels, side, side), top;
    input = random_values(bottom.count(), 3);
    std::copy(input.begin(), input.end(), bottom.mutable_cpu_data());
    std::vector<caffe::Blob<float>*> bottoms{&bottom}, tops{&top};
    layer->SetUp(bottoms, tops);
    weights = random_values(layer->blobs()[0]->count(), 4);
    std::copy(weights.begin(), weights.end(), layer->blobs()[0]->mutable_cpu_data());
    layer->Forward(bottoms, tops);
    output.assign(top.cpu_data(), top.cpu_data() + top.count());
  }
};

TEST_F(OnednnGemm, ConvolutionForwardIsOnednnsSgemm) {
  const int outputs = 96, channels = 64, columns = 16 * 16;  // wider than tall
  const OneByOne conv(outputs, channels, 16);
  std::vector<float> expected(long(outputs) * columns);
  ASSERT_TRUE(caffe::onednn_sgemm(outputs, columns, channels, conv.weights.data(),
                                  conv.input.data(), expected.data()));
  ASSERT_EQ(conv.output.size(), expected.size());
  EXPECT_EQ(0, std::memcmp(conv.output.data(), expected.data(), expected.size() * sizeof(float)));
}

TEST_F(OnednnGemm, ATallerProductStaysWithBlas) {
  const int outputs = 96, channels = 64, columns = 8 * 8;  // taller than wide
  const OneByOne conv(outputs, channels, 8);
  std::vector<float> expected(long(outputs) * columns);
  caffe::caffe_cpu_gemm<float>(CblasNoTrans, CblasNoTrans, outputs, columns, channels, 1.f,
                               conv.weights.data(), conv.input.data(), 0.f, expected.data());
  ASSERT_EQ(conv.output.size(), expected.size());
  EXPECT_EQ(0, std::memcmp(conv.output.data(), expected.data(), expected.size() * sizeof(float)));
}

TEST_F(OnednnGemm, SameBitsOnAnyNumberOfThreads) {
  // CaffeNet's conv1-conv5 on a 451 image (a group each), its fc8 on eight,
  // LeNet's two convolutions, and odd sizes.
  for (const auto& [m, n, k] : std::vector<std::array<int, 3>>{{96, 12321, 363},
                                                               {128, 3025, 1200},
                                                               {384, 729, 2304},
                                                               {192, 729, 1728},
                                                               {1000, 512, 4096},
                                                               {20, 576, 25},
                                                               {50, 64, 500},
                                                               {7, 13, 3}}) {
    const Product p(m, n, k);
    const std::vector<float> one = p.on_threads(1);
    for (int threads : {2, 3, 4}) {
      const std::vector<float> c = p.on_threads(threads);
      EXPECT_EQ(0, std::memcmp(one.data(), c.data(), c.size() * sizeof(float)))
          << m << " x " << n << " x " << k << " on " << threads << " threads";
    }
  }
}

TEST_F(OnednnGemm, AChildForkedAfterItRanGetsTheSameBits) {
  const Product p(384, 729, 2304);  // conv3: several threads' work
  const std::vector<float> parent = p.on_threads(2);
  const pid_t pid = fork();
  ASSERT_NE(pid, -1);
  if (pid == 0) {
    std::vector<float> c(parent.size());
    const bool ran = caffe::onednn_sgemm(p.m, p.n, p.k, p.a.data(), p.b.data(), c.data());
    _exit(!ran ? 3 : std::memcmp(parent.data(), c.data(), c.size() * sizeof(float)) ? 4 : 0);
  }
  EXPECT_EQ(wait_for_child(pid), 0) << "-1: the child hung";
}

TEST_F(OnednnGemm, ASectionBlocksAsynchronousSignalsAndRestoresTheMask) {
  sigset_t before, inside, after;
  ASSERT_EQ(0, pthread_sigmask(SIG_SETMASK, nullptr, &before));
  {
    const caffe::OnednnSection section;
    ASSERT_EQ(0, pthread_sigmask(SIG_SETMASK, nullptr, &inside));
  }
  ASSERT_EQ(0, pthread_sigmask(SIG_SETMASK, nullptr, &after));
  for (int signal : {SIGINT, SIGALRM, SIGPROF, SIGTERM, SIGCHLD, SIGUSR1}) {
    EXPECT_FALSE(sigismember(&before, signal)) << signal;
    EXPECT_TRUE(sigismember(&inside, signal)) << signal;
    EXPECT_FALSE(sigismember(&after, signal)) << signal;
  }
  for (int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) {
    EXPECT_FALSE(sigismember(&inside, fault)) << fault;
  }
}

TEST_F(OnednnGemm, ASignalRaisedInASectionArrivesWhenItEnds) {
  static volatile sig_atomic_t handled = 0;
  struct sigaction action = {}, old = {};
  action.sa_handler = [](int) { handled = 1; };
  ASSERT_EQ(0, sigaction(SIGUSR1, &action, &old));
  {
    const caffe::OnednnSection section;
    ASSERT_EQ(0, pthread_kill(pthread_self(), SIGUSR1));
    EXPECT_EQ(0, handled) << "handled inside the section";
  }
  EXPECT_EQ(1, handled) << "lost";
  sigaction(SIGUSR1, &old, nullptr);
}

}  // namespace
}  // namespace surgery::test
