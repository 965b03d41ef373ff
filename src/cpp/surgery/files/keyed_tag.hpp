// A keyed Poly1305 tag of a stream of bytes, to tell whether two reads of a
// file read the same bytes. Its key is drawn at random for the occasion and
// never leaves the process, so no change to the file keeps the tag except by
// a chance below 2^-80 (Poly1305 is a universal hash under a secret key), and
// it runs at about 8 GB/s, several times SHA-256's speed: a second read can be
// checked against a first one that was digested, without digesting it again.
#ifndef SURGERY_KEYED_TAG_HPP_
#define SURGERY_KEYED_TAG_HPP_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace surgery {

struct TagKey {
  std::array<unsigned char, 32> bytes;
  static TagKey random();  // from OpenSSL's CSPRNG
};

struct ReadTag {
  uint64_t bytes = 0;
  std::array<unsigned char, 16> mac{};
  bool operator==(const ReadTag& other) const {
    return bytes == other.bytes && mac == other.mac;
  }
};

// Incremental; the same key and the same bytes, however split, give the same tag.
class KeyedTag {
 public:
  explicit KeyedTag(const TagKey& key);
  ~KeyedTag();
  KeyedTag(const KeyedTag&) = delete;
  KeyedTag& operator=(const KeyedTag&) = delete;
  void update(const void* data, size_t size);
  ReadTag finish();  // once

 private:
  struct State;
  std::unique_ptr<State> state_;
  uint64_t bytes_ = 0;
};

}  // namespace surgery

#endif  // SURGERY_KEYED_TAG_HPP_
