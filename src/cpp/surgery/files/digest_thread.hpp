// A hash of a stream of bytes (SHA-256, or a keyed tag) computed on a thread
// of its own, so that hashing a 500 MB caffemodel overlaps reading or
// writing it instead of adding to it (one core hashes SHA-256 at about
// 1.2-1.8 GB/s, about as fast as the page cache is copied).
#ifndef SURGERY_DIGEST_THREAD_HPP_
#define SURGERY_DIGEST_THREAD_HPP_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "surgery/files/file_digest.hpp"
#include "surgery/files/keyed_tag.hpp"

namespace surgery {

// Hands spans of memory, in the order queued, to `consume` on a thread of
// its own, through a bounded queue.
class SpanThread {
 public:
  // How many spans may wait: the caller runs at most this far ahead.
  static constexpr size_t kQueueDepth = 4;

  explicit SpanThread(std::function<void(const void*, size_t)> consume);
  // Stops the thread, dropping spans not yet consumed, and joins it: after an
  // error the caller may free the memory it handed over once this returns.
  ~SpanThread();
  SpanThread(const SpanThread&) = delete;
  SpanThread& operator=(const SpanThread&) = delete;

  // Queues a span, which must stay unchanged until done(ticket) for the
  // ticket returned (tickets count up from 1). Waits while kQueueDepth spans
  // are queued. What `consume` threw is rethrown here (and by the calls
  // below); the thread consumes nothing after it.
  uint64_t add(const void* data, size_t size);
  // Waits until every span up to `ticket` is consumed (0: returns at once).
  void wait_done(uint64_t ticket);
  // Waits until every span queued is consumed.
  void drain();

 private:
  struct Span {
    const void* data;
    size_t size;
  };
  void run();
  // Waits, with `lock` held, until `ready` or a failure; rethrows the failure.
  template <class Ready>
  void wait(std::unique_lock<std::mutex>& lock, Ready ready);

  std::function<void(const void*, size_t)> consume_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Span> queue_;  // front: being consumed or next
  uint64_t added_ = 0;
  uint64_t done_ = 0;
  bool stopping_ = false;
  std::exception_ptr failure_;
  std::thread thread_;  // last: starts once the members above exist
};

// A hash (Sha256, KeyedTag) of the spans queued, taken on the thread.
template <class Hash>
class HashThread {
 public:
  template <class... Args>
  explicit HashThread(const Args&... args)
      : hash_(args...), spans_([this](const void* data, size_t size) { hash_.update(data, size); }) {}
  // What the streams (digested_streams.hpp) queue their spans to.
  SpanThread* spans() { return &spans_; }
  // Waits for the last span. Once.
  auto finish() {
    spans_.drain();
    return hash_.finish();
  }

 private:
  Hash hash_;  // used by the thread alone until drained
  SpanThread spans_;
};

// The size and SHA-256 of the spans queued.
using DigestThread = HashThread<Sha256>;
// Their keyed tag (keyed_tag.hpp).
using TagThread = HashThread<KeyedTag>;

}  // namespace surgery

#endif  // SURGERY_DIGEST_THREAD_HPP_
