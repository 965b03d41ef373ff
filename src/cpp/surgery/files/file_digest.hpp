// The size and SHA-256 of a file's bytes, computed while they stream through
// a reader or writer (no second pass over a 500 MB caffemodel). Used to tie a
// saved prototxt to the caffemodel saved with it (pair_record.hpp).
#ifndef SURGERY_FILE_DIGEST_HPP_
#define SURGERY_FILE_DIGEST_HPP_

#include <cstdint>
#include <memory>
#include <string>

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

namespace surgery {

struct FileDigest {
  uint64_t bytes = 0;
  std::string sha256;  // lowercase hex
};

// Incremental SHA-256 (OpenSSL's libcrypto, SHA-NI accelerated where the CPU has it).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  FileDigest finish();  // once

 private:
  struct State;
  std::unique_ptr<State> state_;
  uint64_t bytes_ = 0;
};

// Reads the regular file `path` whole (input_file.hpp) and digests it.
FileDigest digest_file(const std::string& path);

// Reads a file descriptor for protobuf; every byte read goes through `hash`
// when it is not null.
class DigestingInput : public google::protobuf::io::CopyingInputStream {
 public:
  DigestingInput(int fd, Sha256* hash) : fd_(fd), hash_(hash) {}
  int Read(void* buffer, int size) override;

 private:
  int fd_;
  Sha256* hash_;
};

// Writes to a file descriptor for protobuf, hashing every byte written.
// A failed write returns false with errno set (a full disk: ENOSPC/EFBIG).
class DigestingOutput : public google::protobuf::io::CopyingOutputStream {
 public:
  DigestingOutput(int fd, Sha256* hash) : fd_(fd), hash_(hash) {}
  bool Write(const void* buffer, int size) override;

 private:
  int fd_;
  Sha256* hash_;
};

}  // namespace surgery

#endif  // SURGERY_FILE_DIGEST_HPP_
