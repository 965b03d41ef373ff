// The caffemodel readers (streaming and general) against crafted bytes: every
// length bounded by what is left of its parent, float data exactly 4 x count,
// shapes range-checked; files that are not regular refused before reading.
// Run under ASan (./run.sh test) an over-write past a blob fails the test.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <regex>
#include <vector>

#include "surgery/base/errors.hpp"
#include "surgery/base/shape_text.hpp"
#include "surgery/files/caffemodel_reader.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/runtime/net.hpp"
#include "test_support.hpp"
#include "tiny_net.hpp"

namespace surgery::test {
namespace {

std::string varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
  return out;
}

std::string tag(int field, int wire) { return varint((static_cast<uint64_t>(field) << 3) | wire); }
std::string message(int field, const std::string& payload) {
  return tag(field, 2) + varint(payload.size()) + payload;
}
std::string number(int field, uint64_t v) { return tag(field, 0) + varint(v); }

std::string floats(size_t n, float value) {
  std::string out(n * sizeof(float), '\0');
  for (size_t i = 0; i < n; ++i) std::memcpy(&out[i * sizeof(float)], &value, sizeof value);
  return out;
}

// BlobProto: data (5, packed float) before shape (7), as Caffe writes it.
std::string blob(const std::vector<int64_t>& dims, const std::string& data) {
  std::string packed;
  for (int64_t d : dims) packed += varint(static_cast<uint64_t>(d));
  return message(5, data) + message(7, message(1, packed));
}

std::string layer(const std::string& name, const std::vector<std::string>& blobs) {
  std::string out = message(1, name) + message(2, "InnerProduct");
  for (const auto& b : blobs) out += message(7, b);
  return message(100, out);
}

// The tiny net's fc: weights 2 x 9, bias 2.
std::string good_fc(float value) {
  return layer("fc", {blob({2, 9}, floats(18, value)), blob({2}, floats(2, value))});
}

class Reader : public ::testing::Test {
 protected:
  std::string write(const std::string& bytes) { return dir_.file("m.caffemodel", bytes); }
  // Streaming reader, as Net(prototxt, weights) uses it.
  void load(const std::string& bytes) { Net net(prototxt_, write(bytes)); }
  // General reader, as Net::load_weights uses it.
  void load_general(const std::string& bytes) {
    Net net(prototxt_);
    net.load_weights(write(bytes));
  }

  TempDir dir_;
  std::string prototxt_ = dir_.file("tiny.prototxt", kTinyNet);
};

TEST_F(Reader, GoodFileLoadsBothWays) {
  Net streamed(prototxt_, write(good_fc(0.5f)));
  EXPECT_FLOAT_EQ(streamed.params("fc")[0]->cpu_data()[17], 0.5f);
  EXPECT_FLOAT_EQ(streamed.params("fc")[1]->cpu_data()[1], 0.5f);
  Net general(prototxt_);
  general.load_weights(write(good_fc(0.25f)));
  EXPECT_FLOAT_EQ(general.params("fc")[0]->cpu_data()[17], 0.25f);
}

TEST_F(Reader, FloatDataThreeBytesPastTheBlobIsRefused) {
  // 4 x 18 + 3 bytes: 18 floats by integer division, 3 bytes beyond the blob.
  const std::string bytes =
      layer("fc", {blob({2, 9}, floats(18, 1.0f) + "\x41\x41\x41"), blob({2}, floats(2, 1.0f))});
  EXPECT_THROW(load(bytes), ParseError);
  EXPECT_THROW(load_general(bytes), ParseError);
}

TEST_F(Reader, FloatDataNotAMultipleOfFourIsRefused) {
  const std::string bytes = layer("fc", {blob({2, 9}, floats(4, 1.0f) + "\x01"), blob({2}, "")});
  try {
    load(bytes);
    FAIL() << "accepted";
  } catch (const ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("whole number"), std::string::npos) << e.what();
  }
}

TEST_F(Reader, FloatDataOneValueTooManyIsRefusedUnwritten) {
  const std::string bytes =
      layer("fc", {blob({2, 9}, floats(19, 1.0f)), blob({2}, floats(2, 1.0f))});
  EXPECT_THROW(load(bytes), ParseError);
  EXPECT_THROW(load_general(bytes), ParseError);
}

TEST_F(Reader, LengthPrefixOfTwoGigabytesInATinyFile) {
  // A 45-byte file whose layer claims 2^31 bytes.
  std::string bytes = tag(100, 2) + varint(uint64_t{1} << 31) + message(1, "fc");
  bytes.resize(45, 'x');
  try {
    load(bytes);
    FAIL() << "accepted";
  } catch (const ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("2147483648 bytes"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_general(bytes), ParseError);
}

TEST_F(Reader, LengthPrefixPastThirtyTwoBits) {
  for (uint64_t length : {uint64_t{1} << 32, (uint64_t{1} << 32) + 10, ~uint64_t{0}}) {
    const std::string bytes = tag(100, 2) + varint(length) + message(1, "fc");
    EXPECT_THROW(load(bytes), ParseError) << length;
    EXPECT_THROW(load_general(bytes), ParseError) << length;
  }
}

TEST_F(Reader, ChildLongerThanItsParent) {
  // The layer says 20 bytes; its blob inside claims 100 (the file has them).
  const std::string inner = message(1, "fc") + message(2, "InnerProduct") + tag(7, 2) +
                            varint(100);
  const std::string bytes = tag(100, 2) + varint(inner.size() + 4) + inner + floats(40, 1.0f);
  EXPECT_THROW(load(bytes), ParseError);
  EXPECT_THROW(load_general(bytes), ParseError);
}

TEST_F(Reader, DataFloatsClaimMoreThanTheBlobMessage) {
  // The data field's length runs past the end of its blob message.
  const std::string blob_bytes = tag(5, 2) + varint(72) + floats(4, 1.0f);
  const std::string bytes = layer("fc", {blob_bytes}) + floats(20, 1.0f);
  EXPECT_THROW(load(bytes), ParseError);
}

TEST_F(Reader, NegativeHugeAndOverflowingDimensions) {
  const std::vector<std::vector<int64_t>> shapes = {
      {-1, -18},                                  // negative, product positive
      {int64_t{1} << 32, 18},                     // past INT32_MAX
      {2147483647, 2147483647, 4},                // product overflows
      {int64_t{1} << 62, int64_t{1} << 62},       // product overflows int64
  };
  for (const auto& shape : shapes) {
    const std::string bytes = layer("fc", {blob(shape, floats(18, 1.0f)), blob({2}, floats(2, 1.0f))});
    EXPECT_THROW(load(bytes), ParseError) << shape[0];
    EXPECT_THROW(load_general(bytes), ParseError) << shape[0];
  }
}

// What a message should say for a shape's count, by 128-bit arithmetic: the
// exact product where it fits 64 bits, else that it does not.
std::string count_wanted(const std::vector<int64_t>& shape) {
  __int128 exact = 1;
  for (const int64_t d : shape) {
    exact *= d;  // |exact| < 2^64 before each step: no 128-bit overflow
    if (exact < INT64_MIN || exact > INT64_MAX) return "(more values than 64 bits count)";
  }
  return "(" + std::to_string(static_cast<int64_t>(exact)) + ")";
}

// Every "d x d x d (count)" in a message, checked against count_wanted;
// returns how many there were.
int check_stated_counts(const std::string& message) {
  static const std::regex shape(
      R"((-?\d+(?: x -?\d+)*) (\((?:-?\d+|more values than 64 bits count)\)))");
  int found = 0;
  for (std::sregex_iterator it(message.begin(), message.end(), shape), end; it != end; ++it) {
    std::vector<int64_t> dims;
    const std::string text = (*it)[1];
    for (size_t at = 0; at < text.size();) {
      size_t used = 0;
      dims.push_back(std::stoll(text.substr(at), &used));
      at += used + (at + used < text.size() ? 3 : 0);  // " x "
    }
    EXPECT_EQ((*it)[2].str(), count_wanted(dims)) << message;
    ++found;
  }
  return found;
}

// Found by fuzzing: 3 x 2 x 3 x 4323455642275676159 overflowed (a signed
// overflow, UB) while the refusal's message was formatted.
TEST(ShapeText, CountPastSixtyFourBitsIsSaidNotWrapped) {
  const std::vector<std::vector<int64_t>> shapes = {
      {2, 9}, {-1, -18}, {3, 2, 3, 4323455642275676159}, {int64_t{1} << 62, 2},
      {INT64_MAX, 1}, {INT64_MIN, 1}, {INT64_MIN, -1}, {int64_t{1} << 32, int64_t{1} << 31}};
  for (const auto& shape : shapes) {
    const std::string text = shape_text(shape);
    EXPECT_EQ(check_stated_counts(text), 1) << text;
    EXPECT_NE(text.find(count_wanted(shape)), std::string::npos) << text;
    EXPECT_EQ(element_count(shape).has_value(),
              count_wanted(shape).find("more") == std::string::npos) << text;
  }
  EXPECT_EQ(shape_text(std::vector<int64_t>{}), " (1)");
}

// Every input ever kept from fuzzing the caffemodel reader
// (hardening/fuzz/crashes/caffemodel), fed the two ways the fuzz target feeds
// them into its tiny net: each ends in a typed error or a load, and every
// shape a message quotes has its count right.
TEST(FuzzFindings, CaffemodelCrashInputsEndInTypedErrors) {
  const std::filesystem::path kept = std::filesystem::path(SURGERY_FUZZ_CRASHES) / "caffemodel";
  TempDir dir;
  const auto prototxt = dir.file("tiny.prototxt", fuzz::kTinyNet);
  int replayed = 0, counts = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kept)) {
    for (bool streamed : {true, false}) {
      try {
        if (streamed) {
          Net net(prototxt, entry.path().string());
        } else {
          Net net(prototxt);
          net.load_weights(entry.path().string());
        }
      } catch (const Error& e) {
        counts += check_stated_counts(e.what());
      }
    }
    ++replayed;
  }
  EXPECT_GE(replayed, 2);
  EXPECT_GE(counts, 2);  // the two findings are refusals that quote a shape
}

TEST_F(Reader, LegacyDimensionsRangeChecked) {
  // num = -1 (sign-extended, 10 bytes), channels = -18: product 18.
  const std::string legacy = number(1, static_cast<uint64_t>(-1)) +
                             number(2, static_cast<uint64_t>(-18)) + number(3, 1) + number(4, 1);
  const std::string bytes =
      layer("fc", {message(5, floats(18, 1.0f)) + legacy, blob({2}, floats(2, 1.0f))});
  EXPECT_THROW(load(bytes), ParseError);
  EXPECT_THROW(load_general(bytes), ParseError);
}

TEST_F(Reader, TooManyAxes) {
  const std::string bytes =
      layer("fc", {blob(std::vector<int64_t>(40, 1), floats(1, 1.0f)), blob({2}, floats(2, 1.0f))});
  EXPECT_THROW(load(bytes), ParseError);
  EXPECT_THROW(load_general(bytes), ParseError);
}

TEST_F(Reader, TruncatedFile) {
  const std::string bytes = good_fc(1.0f);
  for (size_t cut : {size_t{1}, size_t{5}, bytes.size() / 2, bytes.size() - 1}) {
    EXPECT_THROW(load(bytes.substr(0, cut)), Error) << cut;
  }
}

class NotARegularFile : public ::testing::Test {
 protected:
  TempDir dir_;
  std::string prototxt_ = dir_.file("tiny.prototxt", kTinyNet);
};

TEST_F(NotARegularFile, RefusedBeforeReading) {
  const std::string fifo = dir_.file("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const std::string folder = dir_.file("folder");
  std::filesystem::create_directory(folder);
  for (const std::string& path : {fifo, folder, std::string("/dev/zero")}) {
    EXPECT_THROW(read_net_text(path), FileError) << path;
    EXPECT_THROW(read_net_binary(path), FileError) << path;
    EXPECT_THROW(Net net(prototxt_, path), FileError) << path;
    EXPECT_THROW(Net net(path), FileError) << path;
  }
}

TEST_F(NotARegularFile, PathWithANulByte) {
  const std::string path = prototxt_ + std::string("\0x", 2);
  EXPECT_THROW(read_net_text(path), FileError);
}

TEST_F(NotARegularFile, HugePrototxtRefusedBeforeReading) {
  // A sparse file: 64 MiB + 1 byte that take no disk, refused by size.
  const std::string path = dir_.file("huge.prototxt", "name: \"x\"\n");
  ASSERT_EQ(truncate(path.c_str(), kMaxPrototxtBytes + 1), 0);
  try {
    read_net_text(path);
    FAIL() << "accepted";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("64 MiB"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace surgery::test
