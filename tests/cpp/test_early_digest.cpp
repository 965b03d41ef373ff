// The keyed tag (keyed_tag.hpp) against RFC 8439's Poly1305 test vector, and
// the digest taken ahead (early_digest.hpp) against a plain SHA-256 of the
// file: given only where a later read's tag shows it read the same bytes.
// Run under ThreadSanitizer (tests/cpp/README.md) a data race fails these.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>

#include "surgery/files/early_digest.hpp"
#include "surgery/files/file_digest.hpp"
#include "surgery/files/keyed_tag.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

std::string random_bytes(size_t size, unsigned seed) {
  std::mt19937 random(seed);
  std::string bytes(size, '\0');
  for (char& b : bytes) b = static_cast<char>(random());
  return bytes;
}

ReadTag tag_of(const TagKey& key, const std::string& bytes) {
  KeyedTag tag(key);
  tag.update(bytes.data(), bytes.size());
  return tag.finish();
}

TEST(KeyedTag, EqualsRfc8439sPoly1305TestVector) {
  // RFC 8439, section 2.5.2.
  const unsigned char key[32] = {
      0x85, 0xd6, 0xbe, 0x78, 0x57, 0x55, 0x6d, 0x33, 0x7f, 0x44, 0x52, 0xfe, 0x42, 0xd5, 0x06, 0xa8,
      0x01, 0x03, 0x80, 0x8a, 0xfb, 0x0d, 0xb2, 0xfd, 0x4a, 0xbf, 0xf6, 0xaf, 0x41, 0x49, 0xf5, 0x1b};
  const std::array<unsigned char, 16> expected = {0xa8, 0x06, 0x1d, 0xc1, 0x30, 0x51, 0x36, 0xc6,
                                                  0xc2, 0x2b, 0x8b, 0xaf, 0x0c, 0x01, 0x27, 0xa9};
  TagKey tag_key;
  std::copy(key, key + 32, tag_key.bytes.begin());
  const ReadTag tag = tag_of(tag_key, "Cryptographic Forum Research Group");
  EXPECT_EQ(tag.mac, expected);
  EXPECT_EQ(tag.bytes, 34u);
}

TEST(KeyedTag, SameBytesInAnySpansGiveOneTagAndOneChangedByteAnother) {
  const std::string bytes = random_bytes(3 << 20, 5);
  const TagKey key = TagKey::random();
  std::mt19937 random(9);
  KeyedTag spans(key);
  for (size_t at = 0; at < bytes.size();) {
    const size_t size = std::min<size_t>(random() % (300 << 10), bytes.size() - at);
    spans.update(bytes.data() + at, size);
    at += size;
  }
  EXPECT_EQ(spans.finish(), tag_of(key, bytes));
  std::string changed = bytes;
  changed[changed.size() / 2] ^= 1;
  EXPECT_FALSE(tag_of(key, changed) == tag_of(key, bytes));
  EXPECT_FALSE(tag_of(TagKey::random(), bytes) == tag_of(key, bytes));
}

TEST(EarlyDigest, GivesTheFilesSha256WhenTheLaterReadReadTheSameBytes) {
  TempDir dir;
  const std::string bytes = random_bytes((5 << 20) + 123, 1);  // several chunks and a part
  const auto path = dir.file("model.caffemodel", bytes);
  EarlyDigest early(path);
  const auto digest = early.digest_if_same(tag_of(early.key(), bytes));
  ASSERT_TRUE(digest);
  const FileDigest plain = digest_file(path);
  EXPECT_EQ(digest->sha256, plain.sha256);
  EXPECT_EQ(digest->bytes, bytes.size());
}

TEST(EarlyDigest, GivesNoneWhenTheFileChangedBeforeTheLaterRead) {
  TempDir dir;
  const std::string bytes = random_bytes(2 << 20, 2);
  std::string changed = bytes;
  changed[12345] ^= 0x40;
  const auto path = dir.file("model.caffemodel", bytes);
  {
    EarlyDigest early(path);
    // Changed in place, same size, after the early read: the later read's tag differs.
    EXPECT_FALSE(early.digest_if_same(tag_of(early.key(), changed)));
  }
  {
    EarlyDigest early(path);
    EXPECT_FALSE(early.digest_if_same(tag_of(early.key(), bytes + "more")));
  }
}

TEST(EarlyDigest, GivesNoneForAFileItCannotRead) {
  TempDir dir;
  for (const std::string& path : {dir.file("missing.caffemodel"), dir.path().string()}) {
    EarlyDigest early(path);
    EXPECT_FALSE(early.digest_if_same(ReadTag{})) << path;
  }
}

TEST(EarlyDigest, DestroyedWhileReadingStopsAndJoins) {
  TempDir dir;
  const auto path = dir.file("model.caffemodel", random_bytes(64 << 20, 3));
  for (int i = 0; i < 5; ++i) EarlyDigest early(path);
}

}  // namespace
}  // namespace surgery::test
