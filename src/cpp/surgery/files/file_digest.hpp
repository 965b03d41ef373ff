// The size and SHA-256 of a file's bytes, computed while they stream through
// a reader or writer (no second pass over a 500 MB caffemodel; on a thread
// of its own: digest_thread.hpp, digested_streams.hpp). Used to tie a
// saved prototxt to the caffemodel saved with it (pair_record.hpp).
#ifndef SURGERY_FILE_DIGEST_HPP_
#define SURGERY_FILE_DIGEST_HPP_

#include <cstdint>
#include <memory>
#include <string>

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

}  // namespace surgery

#endif  // SURGERY_FILE_DIGEST_HPP_
