#include "surgery/files/digest_thread.hpp"

#include <utility>

namespace surgery {

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
    changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
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
  changed_.wait(lock, [&] { return failure_ || ready(); });
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
