#include "surgery/files/early_digest.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <vector>

#include "surgery/files/input_file.hpp"

namespace surgery {
namespace {

// Small enough to stay in the cache between the read and the two hashes.
constexpr size_t kChunk = 1 << 20;

}  // namespace

EarlyDigest::EarlyDigest(const std::string& path)
    : path_(path), key_(TagKey::random()), thread_([this] { run(); }) {}

EarlyDigest::~EarlyDigest() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void EarlyDigest::run() {
  try {
    InputFile file(path_, "caffemodel");
    Sha256 digest;
    KeyedTag tag(key_);
    std::vector<char> chunk(kChunk);
    // At most the size at opening: a file that grows meanwhile is not
    // followed (the later read's tag then differs).
    int64_t left = file.size();
    while (left > 0 && !stopping_) {
      const ssize_t n = read(file.fd(), chunk.data(), std::min<size_t>(chunk.size(), left));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // an error, or shorter than it was: no digest
      digest.update(chunk.data(), static_cast<size_t>(n));
      tag.update(chunk.data(), static_cast<size_t>(n));
      left -= n;
    }
    if (left > 0) return;
    digest_ = digest.finish();
    tag_ = tag.finish();
  } catch (const std::exception&) {
    // Not a readable regular file (the load reports it), or OpenSSL or the
    // chunk's allocation failed (the load digests the file itself): no
    // digest, and nothing may escape a thread.
  }
}

std::optional<FileDigest> EarlyDigest::digest_if_same(const ReadTag& later) {
  if (thread_.joinable()) thread_.join();
  if (!digest_ || !(tag_ == later)) return std::nullopt;
  return digest_;
}

bool early_digest_pays() {
  cpu_set_t cpus;
  return sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) >= 2;
}

}  // namespace surgery
