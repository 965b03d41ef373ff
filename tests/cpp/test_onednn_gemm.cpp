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
#include <vector>

#include "caffe/util/math_functions.hpp"
#include "caffe/util/onednn_gemm.hpp"
#include "caffe/util/parallel.hpp"
#include "one_by_one_convolution.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

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

TEST_F(OnednnGemm, ConvolutionForwardIsOnednnsSgemm) {
  const int outputs = 96, channels = 64, columns = 16 * 16;  // wider than tall
  const OneByOneConvolution conv("conv", outputs, channels, 16, 3);
  std::vector<float> expected(long(outputs) * columns);
  ASSERT_TRUE(caffe::onednn_sgemm(outputs, columns, channels, conv.weights.data(),
                                  conv.input.data(), expected.data()));
  ASSERT_EQ(conv.output.size(), expected.size());
  EXPECT_EQ(0, std::memcmp(conv.output.data(), expected.data(), expected.size() * sizeof(float)));
}

TEST_F(OnednnGemm, ATallerProductStaysWithBlas) {
  const int outputs = 96, channels = 64, columns = 8 * 8;  // taller than wide
  const OneByOneConvolution conv("conv", outputs, channels, 8, 3);
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
