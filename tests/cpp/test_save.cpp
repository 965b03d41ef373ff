// Saves: only regular files are replaced (symlinks followed), modes kept,
// read-only files and the net's own sources refused, and a prototxt +
// caffemodel pair that was mixed (a kill between the two renames) refuses
// to load instead of loading silently wrong.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "surgery/base/errors.hpp"
#include "surgery/files/atomic_file.hpp"
#include "surgery/runtime/net.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

mode_t mode_of(const std::string& path) {
  struct stat st;
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

void fill(Net& net, float value) {
  for (const auto& blob : net.params("fc")) {
    float* d = blob->mutable_cpu_data();
    for (int i = 0; i < blob->count(); ++i) d[i] = value;
  }
}

class Save : public ::testing::Test {
 protected:
  TempDir dir_;
  std::string prototxt_ = dir_.file("tiny.prototxt", kTinyNet);
  Net net_{prototxt_};
};

TEST_F(Save, FifoAndDirectoryTargetsRefusedAndLeftAlone) {
  const std::string fifo = dir_.file("fifo.caffemodel");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THROW(net_.save("", fifo), FileError);
  EXPECT_TRUE(S_ISFIFO(mode_of(fifo)));
  const std::string folder = dir_.file("folder.prototxt");
  std::filesystem::create_directory(folder);
  EXPECT_THROW(net_.save(folder, ""), FileError);
  EXPECT_TRUE(S_ISDIR(mode_of(folder)));
  // A link to a FIFO is followed, and the FIFO refused.
  const std::string link = dir_.file("link.caffemodel");
  ASSERT_EQ(symlink(fifo.c_str(), link.c_str()), 0);
  EXPECT_THROW(net_.save("", link), FileError);
  EXPECT_TRUE(S_ISLNK(mode_of(link)));
  EXPECT_TRUE(S_ISFIFO(mode_of(fifo)));
}

TEST_F(Save, ModeKeptSymlinkFollowedReadOnlyRefused) {
  const std::string model = dir_.file("m.caffemodel", "old");
  ASSERT_EQ(chmod(model.c_str(), 0600), 0);
  net_.save("", model);
  EXPECT_EQ(mode_of(model) & 07777, 0600u);
  EXPECT_NE(read_all(model), "old");

  const std::string real = dir_.file("real.caffemodel", "old");
  const std::string link = dir_.file("link.caffemodel");
  ASSERT_EQ(symlink(real.c_str(), link.c_str()), 0);
  net_.save("", link);
  EXPECT_TRUE(S_ISLNK(mode_of(link)));
  EXPECT_EQ(read_all(real), read_all(model));

  const std::string locked = dir_.file("locked.caffemodel", "keep me");
  ASSERT_EQ(chmod(locked.c_str(), 0444), 0);
  EXPECT_THROW(net_.save("", locked), FileError);
  EXPECT_EQ(read_all(locked), "keep me");
  EXPECT_EQ(mode_of(locked) & 07777, 0444u);

  const std::string dangling = dir_.file("dangling.caffemodel");
  ASSERT_EQ(symlink((dir_.file("absent")).c_str(), dangling.c_str()), 0);
  EXPECT_THROW(net_.save("", dangling), FileError);
}

TEST_F(Save, GuardsAgainstMistakes) {
  EXPECT_THROW(net_.save("", ""), Error);
  EXPECT_THROW(net_.save("", dir_.file("w.prototxt")), Error);
  EXPECT_THROW(net_.save("", dir_.file("w.TXT")), Error);
  EXPECT_THROW(net_.save(dir_.file("p.caffemodel"), ""), Error);
  const std::string both = dir_.file("both");
  EXPECT_THROW(net_.save(both, both), FileError);
  const std::string before = read_all(prototxt_);
  EXPECT_THROW(net_.save(prototxt_, ""), FileError);
  EXPECT_EQ(read_all(prototxt_), before);
  net_.save(prototxt_, "", /*overwrite=*/true);
  EXPECT_NE(read_all(prototxt_), before);  // rewritten by protobuf: no comments, new layout
  EXPECT_FALSE(std::filesystem::exists(both));
}

TEST_F(Save, MixedPairRefusesToLoad) {
  const std::string proto = dir_.file("pair.prototxt");
  const std::string model = dir_.file("pair.caffemodel");
  fill(net_, 1.0f);
  net_.save(proto, model);
  const std::string old_model = read_all(model);
  fill(net_, 2.0f);
  net_.save(proto, model);
  Net fresh(proto, model);  // the new pair
  EXPECT_FLOAT_EQ(fresh.params("fc")[0]->cpu_data()[0], 2.0f);
  // The state a kill between the two renames leaves: new prototxt, old weights.
  std::ofstream(model, std::ios::binary) << old_model;
  try {
    Net mixed(proto, model);
    FAIL() << "a mixed pair loaded";
  } catch (const ParseError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("pair.prototxt"), std::string::npos) << message;
    EXPECT_NE(message.find("pair.caffemodel"), std::string::npos) << message;
    EXPECT_NE(message.find("mixed"), std::string::npos) << message;
  }
  // Other weights under another name still load into the definition.
  const std::string other = dir_.file("other.caffemodel", old_model);
  Net with_other(proto, other);
  EXPECT_FLOAT_EQ(with_other.params("fc")[0]->cpu_data()[0], 1.0f);
}

TEST(SameFile, ByInodeOrResolvedPath) {
  TempDir dir;
  const std::string a = dir.file("a", "x");
  const std::string link = dir.file("l");
  ASSERT_EQ(symlink(a.c_str(), link.c_str()), 0);
  EXPECT_TRUE(same_file(a, link));
  std::filesystem::create_directory(dir.file("sub"));
  EXPECT_TRUE(same_file(dir.file("new"), dir.file("sub/../new")));  // neither exists
  EXPECT_TRUE(same_file(dir.file("new"), dir.file("new")));
  EXPECT_FALSE(same_file(a, dir.file("new")));
}

}  // namespace
}  // namespace surgery::test
