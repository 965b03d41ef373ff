// The bindings' locking rule (bindings/net_guard.hpp) from C++, so it runs
// under the sanitizers: threads sharing one net through its guard, each
// doing views, heads, reshapes and forwards in a loop, get the results a
// single thread gets; a forward can be interrupted between layers.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>
#include <vector>

#include "bindings/net_guard.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/runtime/device.hpp"
#include "surgery/runtime/net.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

using bindings::Guarded;

void fill_params(Net& net) {
  float v = 0.05f;
  for (const auto* layer : {"conv", "fc"}) {
    for (const auto& blob : net.params(layer)) {
      float* d = blob->mutable_cpu_data();
      for (int i = 0; i < blob->count(); ++i, v = -v * 1.03f) d[i] = v;
    }
  }
}

// The tiny net's two outputs for an n x n image of value `value`, N = 1.
std::vector<float> outputs(Net& net, int n, float value) {
  std::vector<float> image(n * n, value);
  net.forward({{"data", {{1, 1, n, n}, image.data()}}});
  const auto& fc = net.blob("fc");
  return {fc.cpu_data(), fc.cpu_data() + fc.count()};
}

TEST(NetGuard, TheHoldingThreadAskingAgainIsRefusedNotDeadlocked) {
  // A Python layer calling into the net that runs it: without the check the
  // second run() waits for the first, on the same thread, forever.
  bindings::Guard guard;
  bool inner_ran = false;
  guard.run([&] {
    EXPECT_THROW(guard.run([&] { inner_ran = true; }), Error);
  });
  EXPECT_FALSE(inner_ran);
  guard.run([&] { inner_ran = true; });  // released: usable again
  EXPECT_TRUE(inner_ran);
}

TEST(NetGuard, ThreadsSharingOneNetGetSingleThreadedResults) {
  // The fc layer fixes the input at 4x4, so shapes vary only in value and
  // batch: reshape to N = 2 and back, forward at N = 1.
  Guarded<Net> net(parse_net_text(kTinyNet, "tiny"), "tiny");
  fill_params(net);
  std::map<int, std::vector<float>> expected;
  for (int k = 0; k < 4; ++k) expected[k] = outputs(net, 4, 0.25f * k);

  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        const int k = (t + round) % 4;
        switch (round % 4) {
          case 0:  // a view: write through the host pointer, read it back
            net.guard().run([&] {
              float* data = net.blob("data").mutable_cpu_data();
              data[0] = static_cast<float>(round);
              if (net.blob("data").cpu_data()[0] != static_cast<float>(round)) ++wrong;
            });
            break;
          case 1:  // heads: asking moves nothing
            net.guard().run([&] {
              if (head_of(net.blob("fc")).empty() || head_of(*net.params("conv")[0]).empty()) {
                ++wrong;
              }
            });
            break;
          case 2:  // reshape to a batch of two and back
            net.guard().run([&] {
              net.reshape({{"data", {2, 1, 4, 4}}});
              if (net.blob("fc").shape() != std::vector<int>{2, 2}) ++wrong;
              net.reshape({{"data", {1, 1, 4, 4}}});
            });
            break;
          default:  // forward, compared with the single-threaded result
            net.guard().run([&] {
              if (outputs(net, 4, 0.25f * k) != expected[k]) ++wrong;
            });
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(NetGuard, ForwardStopsBetweenLayersAndTheNetStaysUsable) {
  Guarded<Net> net(parse_net_text(kTinyNet, "tiny"), "tiny");
  fill_params(net);
  const std::vector<float> expected = outputs(net, 4, 1.f);
  std::vector<float> image(16, 3.f);
  int asked = 0;
  // Stop before the second layer: the first (Input) ran, conv and fc did not.
  EXPECT_THROW(net.forward({{"data", {{1, 1, 4, 4}, image.data()}}},
                           [&] { return ++asked == 2; }),
               Interrupted);
  EXPECT_EQ(asked, 2);
  EXPECT_EQ(outputs(net, 4, 1.f), expected);
}

}  // namespace
}  // namespace surgery::test
