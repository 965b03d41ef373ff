// A file's size and SHA-256 taken ahead, on a thread of its own, while the
// caller does other work (builds the net the file's weights go to), with a
// keyed tag (keyed_tag.hpp) of the same bytes. The load that follows reads
// the file again, taking only the tag, several times faster than SHA-256:
// the same tag means the same bytes, and the digest ahead is theirs. So the
// digest is taken beside the build instead of after it.
#ifndef SURGERY_EARLY_DIGEST_HPP_
#define SURGERY_EARLY_DIGEST_HPP_

#include <atomic>
#include <optional>
#include <string>
#include <thread>

#include "surgery/files/file_digest.hpp"
#include "surgery/files/keyed_tag.hpp"

namespace surgery {

class EarlyDigest {
 public:
  // Starts reading `path`. Never throws for the file: a file it cannot read
  // (missing, not regular, an I/O error) gives no digest, and the load says
  // what is wrong.
  explicit EarlyDigest(const std::string& path);
  // Stops reading (within a chunk) and joins.
  ~EarlyDigest();
  EarlyDigest(const EarlyDigest&) = delete;
  EarlyDigest& operator=(const EarlyDigest&) = delete;

  // The key a later read takes its tag with.
  const TagKey& key() const { return key_; }
  // Waits for the end of the file. Its digest if it was read whole and
  // `later` (a later read's tag) says that read read the same bytes;
  // nullopt otherwise (the file changed in between, or could not be read).
  std::optional<FileDigest> digest_if_same(const ReadTag& later);

 private:
  void run();

  const std::string path_;
  const TagKey key_;
  std::atomic<bool> stopping_{false};
  // Written by the thread alone, read once it has been joined.
  std::optional<FileDigest> digest_;
  ReadTag tag_;
  std::thread thread_;  // last: starts once the members above exist
};

// Whether this process may run on two CPUs or more: digesting ahead costs
// a second read of the file and two tags (about 0.1 s of CPU for 233 MB),
// which pays only where the build leaves a CPU free to do it.
bool early_digest_pays();

}  // namespace surgery

#endif  // SURGERY_EARLY_DIGEST_HPP_
