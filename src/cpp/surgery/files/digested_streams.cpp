#include "surgery/files/digested_streams.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace surgery {
namespace {

constexpr int kBuffers = SpanThread::kQueueDepth;
constexpr size_t kBufferSize = 1 << 20;
// Direct reads and writes go in pieces of this size, so the digest follows
// a few MB behind rather than a whole 400 MB blob.
constexpr size_t kPiece = 4 << 20;
// How far the written bytes run ahead of the disk's writeback.
constexpr int64_t kWriteBehind = 8 << 20;

// A stream that is torn down while its spans are queued (an exception
// unwinding a load or save) must not free them under the digest's thread.
void wait_quietly(SpanThread* digest, uint64_t ticket) {
  if (!digest) return;
  try {
    digest->wait_done(ticket);
  } catch (...) {
    // The thread failed and stopped: nothing of ours is in use.
  }
}

}  // namespace

DigestedInput::DigestedInput(int fd, SpanThread* digest)
    : fd_(fd), digest_(digest), buffers_(new char[kBuffers * kBufferSize]) {}

DigestedInput::~DigestedInput() { wait_quietly(digest_, last_span_); }

ssize_t DigestedInput::read_some(char* at, size_t size) {
  ssize_t n;
  do {
    n = read(fd_, at, size);
  } while (n < 0 && errno == EINTR);
  if (n < 0) error_ = errno;
  if (n > 0 && digest_) last_span_ = digest_->add(at, static_cast<size_t>(n));
  return n;
}

bool DigestedInput::read_fully(char* at, size_t size) {
  while (size > 0) {
    const ssize_t n = read_some(at, std::min(size, kPiece));
    if (n <= 0) return false;
    at += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool DigestedInput::Next(const void** data, int* size) {
  if (backed_up_ == 0) {
    const int next = (current_ + 1) % kBuffers;
    if (digest_) digest_->wait_done(tickets_[next]);
    const ssize_t n = read_some(buffers_.get() + next * kBufferSize, kBufferSize);
    if (n <= 0) return false;
    tickets_[next] = last_span_;
    current_ = next;
    filled_ = backed_up_ = static_cast<size_t>(n);
  }
  *data = buffers_.get() + current_ * kBufferSize + (filled_ - backed_up_);
  *size = static_cast<int>(backed_up_);
  position_ += static_cast<int64_t>(backed_up_);
  backed_up_ = 0;
  return true;
}

void DigestedInput::BackUp(int count) {
  backed_up_ = static_cast<size_t>(count);
  position_ -= count;
}

bool DigestedInput::Skip(int count) {
  size_t left = static_cast<size_t>(count);
  char* target = std::exchange(skip_target_, nullptr);
  if (!target) {
    while (left > 0) {
      const void* data;
      int size;
      if (!Next(&data, &size)) return false;
      if (static_cast<size_t>(size) > left) BackUp(size - static_cast<int>(left));
      left -= std::min(left, static_cast<size_t>(size));
    }
    return true;
  }
  const size_t buffered = std::min(left, backed_up_);
  std::memcpy(target, buffers_.get() + current_ * kBufferSize + (filled_ - backed_up_), buffered);
  backed_up_ -= buffered;
  left -= buffered;
  if (!read_fully(target + buffered, left)) return false;
  position_ += count;
  return true;
}

bool read_raw_direct(google::protobuf::io::CodedInputStream& in, DigestedInput& file,
                     void* target, int size) {
  const void* buffered;
  int available;
  in.GetDirectBufferPointerInline(&buffered, &available);
  const int take = std::min(available, size);
  std::memcpy(target, buffered, static_cast<size_t>(take));
  if (!in.Skip(take)) return false;
  if (take == size) return true;
  // The coded stream's buffer is used up: its Skip of the rest asks the file
  // to skip exactly that many bytes, which then land in `target`.
  file.skip_target_ = static_cast<char*>(target) + take;
  const bool read = in.Skip(size - take);
  file.skip_target_ = nullptr;
  return read;
}

DigestedOutput::DigestedOutput(int fd, SpanThread* digest)
    : fd_(fd), digest_(digest), buffers_(new char[kBuffers * kBufferSize]) {}

DigestedOutput::~DigestedOutput() { wait_quietly(digest_, last_span_); }

bool DigestedOutput::write_fully(const char* at, size_t size) {
  while (size > 0) {
    const size_t piece = std::min(size, kPiece);
    const ssize_t n = write(fd_, at, piece);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = n < 0 ? errno : EIO;
      return false;
    }
    if (digest_) last_span_ = digest_->add(at, static_cast<size_t>(n));
    written_ += n;
    at += n;
    size -= static_cast<size_t>(n);
    start_writeback();
  }
  return true;
}

void DigestedOutput::start_writeback() {
  if (written_ - writeback_from_ < kWriteBehind) return;
  // Asks the kernel to start writing these pages to the disk now, without
  // waiting for it: the disk works while the rest is written and hashed,
  // and the fsync that makes the file durable waits for the last few MB.
  // Only a hint: a file system without it (an error) is synced as before.
  sync_file_range(fd_, writeback_from_, written_ - writeback_from_, SYNC_FILE_RANGE_WRITE);
  writeback_from_ = written_;
}

bool DigestedOutput::Flush() {
  if (error_) return false;
  if (pending_ == 0) return true;
  const size_t size = std::exchange(pending_, 0);
  if (!write_fully(buffers_.get() + current_ * kBufferSize, size)) return false;
  tickets_[current_] = last_span_;  // filled again only once that is hashed
  return true;
}

bool DigestedOutput::Next(void** data, int* size) {
  if (!Flush()) return false;
  const int next = (current_ + 1) % kBuffers;
  if (digest_) digest_->wait_done(tickets_[next]);
  current_ = next;
  pending_ = kBufferSize;
  *data = buffers_.get() + next * kBufferSize;
  *size = static_cast<int>(kBufferSize);
  return true;
}

void DigestedOutput::BackUp(int count) { pending_ -= static_cast<size_t>(count); }

bool DigestedOutput::WriteAliasedRaw(const void* data, int size) {
  return Flush() && write_fully(static_cast<const char*>(data), static_cast<size_t>(size));
}

}  // namespace surgery
