// Protobuf streams over a file descriptor that hand every byte read or
// written, in file order, to a hash thread (digest_thread.hpp: SHA-256 or a
// keyed tag) when given one's spans(), and that let bulk data skip the
// stream's buffer: a caffemodel's floats go from the file straight into a
// blob and from a blob straight to the file, one copy each way, as a plain
// read() or write() of them would.
#ifndef SURGERY_DIGESTED_STREAMS_HPP_
#define SURGERY_DIGESTED_STREAMS_HPP_

#include <sys/types.h>

#include <cstdint>
#include <memory>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream.h>

#include "surgery/files/digest_thread.hpp"

namespace surgery {

// Each stream waits, when destroyed, for the digest to be done with its
// spans: the hash thread must outlive it.

// Chunks of the file in a ring of buffers; a buffer is read into again only
// once the digest has hashed what it held. A failed read() ends the stream,
// with error() its errno (0 at the file's end).
class DigestedInput : public google::protobuf::io::ZeroCopyInputStream {
 public:
  DigestedInput(int fd, SpanThread* digest);
  ~DigestedInput() override;
  bool Next(const void** data, int* size) override;
  void BackUp(int count) override;
  bool Skip(int count) override;
  int64_t ByteCount() const override { return position_; }
  int error() const { return error_; }

 private:
  friend bool read_raw_direct(google::protobuf::io::CodedInputStream& in, DigestedInput& file,
                              void* target, int size);
  bool read_fully(char* at, size_t size);  // digested; false at the end or an error
  ssize_t read_some(char* at, size_t size);  // digested

  int fd_;
  SpanThread* digest_;
  std::unique_ptr<char[]> buffers_;
  uint64_t tickets_[SpanThread::kQueueDepth] = {};  // each buffer's last span
  uint64_t last_span_ = 0;
  int current_ = 0;
  size_t filled_ = 0;     // bytes read into the current buffer
  size_t backed_up_ = 0;  // of those, how many the next Next() hands out again
  char* skip_target_ = nullptr;  // where Skip() puts its bytes (read_raw_direct)
  int64_t position_ = 0;
  int error_ = 0;
};

// Reads `size` bytes at `in`'s position into `target`: what `in` holds in its
// buffer is copied, the rest read from the file into `target` directly.
// `in` must read `file`. False if the input (or `in`'s limit) ends first.
bool read_raw_direct(google::protobuf::io::CodedInputStream& in, DigestedInput& file,
                     void* target, int size);

// Buffered writes, the disk's writeback started as they go (sync_file_range);
// WriteAliasedRaw (CodedOutputStream::WriteRawMaybeAliased
// with aliasing enabled) writes the caller's memory directly, which must then
// stay unchanged until the digest is finished. A failed write() makes every
// later call return false, with error() its errno (a full disk: ENOSPC).
class DigestedOutput : public google::protobuf::io::ZeroCopyOutputStream {
 public:
  DigestedOutput(int fd, SpanThread* digest);
  ~DigestedOutput() override;
  bool Next(void** data, int* size) override;
  void BackUp(int count) override;
  int64_t ByteCount() const override { return written_ + pending_; }
  bool AllowsAliasing() const override { return true; }
  bool WriteAliasedRaw(const void* data, int size) override;
  // Writes what is buffered.
  bool Flush();
  int error() const { return error_; }

 private:
  bool write_fully(const char* at, size_t size);  // digested
  void start_writeback();

  int fd_;
  SpanThread* digest_;
  std::unique_ptr<char[]> buffers_;
  uint64_t tickets_[SpanThread::kQueueDepth] = {};  // each buffer's last span
  uint64_t last_span_ = 0;
  int current_ = -1;     // the buffer handed out last, none before the first Next()
  size_t pending_ = 0;   // bytes of it not yet written
  int64_t written_ = 0;
  int64_t writeback_from_ = 0;  // written_ when writeback was last started
  int error_ = 0;
};

}  // namespace surgery

#endif  // SURGERY_DIGESTED_STREAMS_HPP_
