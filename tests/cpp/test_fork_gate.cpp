// fork() while another thread is inside Caffe (fork_gate.hpp): the child
// is forked only between that thread's steps, so it can run a GEMM of its
// own. Without the gate the child often inherited OpenBLAS's level-3 lock
// held by the other thread and waited for it forever.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "caffe/util/math_functions.hpp"
#include "surgery/runtime/fork_gate.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

constexpr int kN = 384;  // a GEMM of a few ms, threaded by OpenBLAS

void square(const std::vector<float>& a, std::vector<float>& c) {
  caffe::caffe_cpu_gemm<float>(CblasNoTrans, CblasNoTrans, kN, kN, kN, 1.f, a.data(), a.data(),
                               0.f, c.data());
}

TEST(ForkGate, ChildForkedWhileAnotherThreadRunsGemmsRunsItsOwn) {
  const std::vector<float> a(kN * kN, 0.5f);
  std::atomic<bool> stop{false};
  std::atomic<bool> in_step{false};
  std::atomic<int> steps{0};
  std::thread worker([&] {
    std::vector<float> c(kN * kN);
    const CaffeSection section;
    while (!stop) {
      in_step = true;
      square(a, c);
      in_step = false;
      ++steps;
      let_fork_through();
    }
  });
  while (steps == 0) std::this_thread::yield();
  for (int round = 0; round < 8; ++round) {
    const pid_t pid = fork();
    ASSERT_NE(pid, -1);
    if (pid == 0) {
      if (in_step) _exit(3);  // forked in the middle of the other thread's step
      std::vector<float> c(kN * kN);
      square(a, c);
      _exit(c[0] == 0.25f * kN ? 0 : 4);
    }
    EXPECT_EQ(wait_for_child(pid), 0) << "round " << round << " (-1: the child hung)";
  }
  stop = true;
  worker.join();
}

TEST(ForkGate, LettingAForkThroughOutsideASectionDoesNothing) {
  let_fork_through();
  const pid_t pid = fork();
  ASSERT_NE(pid, -1);
  if (pid == 0) {
    const CaffeSection section;  // the child can open one
    _exit(0);
  }
  EXPECT_EQ(wait_for_child(pid), 0);
}

TEST(ForkGate, AThreadOutsideItsSectionDoesNotHoldAForkBack) {
  // The worker is inside a section but steps out to wait for something the
  // forking thread holds (a Python layer waiting for the GIL): the fork must
  // go through without the worker's step.
  std::atomic<bool> outside{false};
  std::atomic<bool> forked{false};
  std::thread worker([&] {
    const CaffeSection section;
    const OutsideCaffeSection waiting;
    outside = true;
    while (!forked) std::this_thread::yield();
  });
  while (!outside) std::this_thread::yield();
  const pid_t pid = fork();  // would wait for the worker's section forever
  ASSERT_NE(pid, -1);
  if (pid == 0) _exit(0);
  forked = true;
  EXPECT_EQ(wait_for_child(pid), 0);
  worker.join();
}

}  // namespace
}  // namespace surgery::test
