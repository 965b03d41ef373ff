#include "surgery/files/digest_thread.hpp"

#include <chrono>
#include <utility>

namespace surgery {

namespace {

// changed.wait(lock, ready), spelled with wait_for: the untimed wait is a
// GCC 12 symbol (GLIBCXX_3.4.30) that manylinux_2_34's libstdc++ lacks, so
// the wheel could not carry that tag; wait_for is inline over glibc 2.34's
// pthread_cond_clockwait. A notify still wakes it at once.
template <class Ready>
void wait_until(std::condition_variable& changed, std::unique_lock<std::mutex>& lock,
                Ready ready) {
  while (!ready()) changed.wait_for(lock, std::chrono::seconds(1));
}

}  // namespace

SpanThread::SpanThread(std::function<void(const void*, size_t)> consume)
    : consume_(std::move(consume)), thread_([this] { run(); }) {}

SpanThread::~SpanThread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void SpanThread::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wait_until(changed_, lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    const Span span = queue_.front();  // stays queued, counting against the depth, until consumed
    lock.unlock();
    std::exception_ptr failure;
    try {
      consume_(span.data, span.size);
    } catch (...) {
      failure = std::current_exception();
    }
    lock.lock();
    queue_.pop_front();
    if (failure) failure_ = failure;
    else ++done_;
    changed_.notify_all();
    if (failure) return;
  }
}

template <class Ready>
void SpanThread::wait(std::unique_lock<std::mutex>& lock, Ready ready) {
  wait_until(changed_, lock, [&] { return failure_ || ready(); });
  if (failure_) std::rethrow_exception(failure_);
}

uint64_t SpanThread::add(const void* data, size_t size) {
  std::unique_lock<std::mutex> lock(mutex_);
  wait(lock, [&] { return queue_.size() < kQueueDepth; });
  queue_.push_back({data, size});
  const uint64_t ticket = ++added_;
  lock.unlock();
  changed_.notify_all();
  return ticket;
}

void SpanThread::wait_done(uint64_t ticket) {
  std::unique_lock<std::mutex> lock(mutex_);
  wait(lock, [&] { return done_ >= ticket; });
}

void SpanThread::drain() {
  std::unique_lock<std::mutex> lock(mutex_);
  wait(lock, [&] { return done_ == added_; });
}

}  // namespace surgery
