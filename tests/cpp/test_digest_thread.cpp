// The digest's thread (digest_thread.hpp) and the streams that feed it
// (digested_streams.hpp): spans consumed in order through a bounded queue, a
// failure carried back to the caller, no thread left running; a caffemodel
// with blobs larger than the streams' buffers saved and loaded through them,
// checked against protobuf's own parser, stock caffe::Net and a plain
// single-threaded SHA-256 of the file. Run under ThreadSanitizer
// (tests/cpp/README.md) a data race fails these tests.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "caffe/net.hpp"
#include "surgery/files/digest_thread.hpp"
#include "surgery/files/pair_record.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/runtime/net.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

using namespace std::chrono_literals;

// A consumer that waits at a gate until it is opened.
class Gate {
 public:
  void open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    opened_.notify_all();
  }
  void pass() {
    std::unique_lock<std::mutex> lock(mutex_);
    opened_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
};

TEST(SpanThread, ConsumesEverySpanInOrderBehindAFasterProducer) {
  std::vector<int> values(200);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int>(i);
  std::vector<int> seen;  // written by the thread only, read after drain()
  SpanThread spans([&](const void* data, size_t size) {
    EXPECT_EQ(size, sizeof(int));
    if (seen.size() % 16 == 0) std::this_thread::sleep_for(1ms);  // slower than the producer
    seen.push_back(*static_cast<const int*>(data));
  });
  for (const int& value : values) spans.add(&value, sizeof value);
  spans.drain();
  EXPECT_EQ(seen, values);
}

TEST(SpanThread, AddWaitsWhileTheQueueIsFull) {
  Gate gate;
  std::atomic<int> consumed{0};
  SpanThread spans([&](const void*, size_t) {
    gate.pass();
    ++consumed;
  });
  const size_t total = SpanThread::kQueueDepth + 1;
  std::atomic<size_t> added{0};
  std::thread producer([&] {
    for (size_t i = 0; i < total; ++i) {
      spans.add(nullptr, 0);
      ++added;
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (added < SpanThread::kQueueDepth && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  std::this_thread::sleep_for(50ms);  // time for an unbounded queue to take one more
  EXPECT_EQ(added.load(), SpanThread::kQueueDepth);
  gate.open();
  producer.join();
  spans.drain();
  EXPECT_EQ(consumed.load(), static_cast<int>(total));
}

TEST(SpanThread, ConsumerFailureIsRethrownToTheCallerAndStopsTheThread) {
  std::atomic<int> consumed{0};
  try {
    SpanThread spans([&](const void*, size_t) {
      if (++consumed == 3) throw std::runtime_error("disk on fire");
    });
    for (int i = 0; i < 100; ++i) spans.add(nullptr, 0);
    spans.drain();
    FAIL() << "the consumer's failure was not rethrown";
  } catch (const std::runtime_error& error) {
    EXPECT_STREQ(error.what(), "disk on fire");
  }
  EXPECT_EQ(consumed.load(), 3);  // nothing consumed after the failure
}

TEST(SpanThread, DestroyedWithSpansQueuedDropsThemAndJoins) {
  Gate gate;
  std::atomic<int> entered{0}, consumed{0};
  std::thread opener;
  {
    SpanThread spans([&](const void*, size_t) {
      ++entered;
      gate.pass();
      ++consumed;
    });
    for (size_t i = 0; i < SpanThread::kQueueDepth; ++i) spans.add(nullptr, 0);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (entered == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    // The destructor waits for the span being consumed, then drops the rest.
    opener = std::thread([&] {
      std::this_thread::sleep_for(20ms);
      gate.open();
    });
  }
  opener.join();
  EXPECT_EQ(consumed.load(), 1);
}

TEST(DigestThread, UnevenSpansHashAsTheWholeAtOnce) {
  std::mt19937 random(7);
  std::vector<unsigned char> bytes(3 << 20);
  for (auto& b : bytes) b = static_cast<unsigned char>(random());
  DigestThread digest;
  size_t at = 0;
  while (at < bytes.size()) {
    const size_t size = std::min<size_t>(random() % (300 << 10), bytes.size() - at);
    digest.spans()->add(bytes.data() + at, size);
    at += size;
  }
  Sha256 whole;
  whole.update(bytes.data(), bytes.size());
  const FileDigest expected = whole.finish();
  const FileDigest got = digest.finish();
  EXPECT_EQ(got.bytes, bytes.size());
  EXPECT_EQ(got.sha256, expected.sha256);
}

// Blobs of 1.5 to 4 MB and small ones between them, so that blob data
// starts and ends inside the streams' 1 MB buffers and spans several.
const char* kWideNet = R"(
name: "wide"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 3 dim: 16 dim: 16 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 5 kernel_size: 3 } }
layer { name: "fc1" type: "InnerProduct" bottom: "conv" top: "fc1"
        inner_product_param { num_output: 1000 } }
layer { name: "fc2" type: "InnerProduct" bottom: "fc1" top: "fc2"
        inner_product_param { num_output: 397 } }
layer { name: "fc3" type: "InnerProduct" bottom: "fc2" top: "fc3"
        inner_product_param { num_output: 7 } }
)";

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(DigestedStreams, SaveAndLoadOfBlobsLargerThanTheBuffers) {
  TempDir dir;
  Net net(parse_net_text(kWideNet, "wide"), "wide");
  std::mt19937 random(11);
  std::normal_distribution<float> normal;
  for (const char* layer : {"conv", "fc1", "fc2", "fc3"}) {
    for (const auto& blob : net.params(layer)) {
      float* data = blob->mutable_cpu_data();
      for (int i = 0; i < blob->count(); ++i) data[i] = normal(random);
    }
  }
  const auto proto = dir.file("wide.prototxt");
  const auto model = dir.file("wide.caffemodel");
  net.save(proto, model);

  // What was hashed while writing (the pair record) is what a plain read of
  // the file hashes.
  const auto record = find_pair_record(read_text_file(proto), proto);
  ASSERT_TRUE(record);
  const FileDigest read_back = digest_file(model);
  EXPECT_EQ(record->digest.sha256, read_back.sha256);
  EXPECT_EQ(record->digest.bytes, read_back.bytes);

  // protobuf's own parser reads every blob back.
  caffe::NetParameter parsed;
  ASSERT_TRUE(parsed.ParseFromString(file_bytes(model)));
  int blobs = 0;
  for (const auto& layer : parsed.layer()) {
    for (int i = 0; i < layer.blobs_size(); ++i, ++blobs) {
      const auto& expected = *net.params(layer.name())[i];
      ASSERT_EQ(layer.blobs(i).data_size(), expected.count()) << layer.name();
      EXPECT_TRUE(std::equal(expected.cpu_data(), expected.cpu_data() + expected.count(),
                             layer.blobs(i).data().begin()))
          << layer.name();
    }
  }
  EXPECT_EQ(blobs, 8);

  // Loaded through the streaming reader (its digest checked against the
  // pair record, else this throws) and by stock Caffe: the same values.
  Net loaded(proto, model);
  caffe::Net<float> stock(proto, caffe::TEST);
  stock.CopyTrainedLayersFrom(model);
  for (const char* layer : {"conv", "fc1", "fc2", "fc3"}) {
    for (size_t i = 0; i < 2; ++i) {
      const auto& expected = *net.params(layer)[i];
      for (const auto* got : {loaded.params(layer)[i].get(),
                              stock.layer_by_name(layer)->blobs()[i].get()}) {
        ASSERT_EQ(got->shape(), expected.shape());
        EXPECT_TRUE(std::equal(expected.cpu_data(), expected.cpu_data() + expected.count(),
                               got->cpu_data()))
            << layer;
      }
    }
  }
}

}  // namespace
}  // namespace surgery::test
