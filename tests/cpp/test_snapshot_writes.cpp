// Caffe's snapshot writers (third_party/caffe/patches/0015): a snapshot
// whose write fails (here: the file-size limit, as a full disk would) leaves
// the earlier file of that name as it was and no temporary behind. Before the
// patch Caffe truncated the target first, then wrote into it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "caffe/net.hpp"
#include "caffe/util/io.hpp"
#include "surgery/files/proto_io.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

const char* kEarlier = "the snapshot taken before";

std::string contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> names_in(const TempDir& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    names.push_back(entry.path().filename().string());
  }
  return names;
}

// Runs `write` with files limited to `limit` bytes: a write past it fails
// with EFBIG (SIGXFSZ ignored) instead of ending the process.
void under_file_size_limit(rlim_t limit, const std::function<void()>& write) {
  rlimit before{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &before), 0);
  rlimit small = before;
  small.rlim_cur = limit;
  struct sigaction ignore {}, previous{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &previous), 0);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  try {
    write();
  } catch (...) {
    setrlimit(RLIMIT_FSIZE, &before);
    sigaction(SIGXFSZ, &previous, nullptr);
    throw;
  }
  setrlimit(RLIMIT_FSIZE, &before);
  sigaction(SIGXFSZ, &previous, nullptr);
}

caffe::NetParameter weights_of(int values) {
  caffe::NetParameter param;
  param.set_name("weights");
  caffe::BlobProto* blob = param.add_layer()->add_blobs();
  blob->mutable_shape()->add_dim(values);
  for (int i = 0; i < values; ++i) blob->add_data(0.25f * static_cast<float>(i));
  return param;
}

TEST(SnapshotWrites, AFailedBinaryWriteLeavesTheEarlierFileAsItWas) {
  TempDir dir;
  const std::string target = dir.file("net_iter_10.caffemodel", kEarlier);
  EXPECT_ANY_THROW(under_file_size_limit(4096, [&] {
    caffe::WriteProtoToBinaryFile(weights_of(100000), target);
  }));
  EXPECT_EQ(contents(target), kEarlier);
  EXPECT_EQ(names_in(dir), std::vector<std::string>{"net_iter_10.caffemodel"});
}

TEST(SnapshotWrites, AWholeBinaryWriteReplacesTheFileWithAPlainFilesMode) {
  TempDir dir;
  const std::string target = dir.file("net_iter_20.caffemodel", kEarlier);
  const caffe::NetParameter written = weights_of(1000);
  caffe::WriteProtoToBinaryFile(written, target);
  caffe::NetParameter read;
  ASSERT_TRUE(caffe::ReadProtoFromBinaryFile(target, &read));
  EXPECT_EQ(read.SerializeAsString(), written.SerializeAsString());
  EXPECT_EQ(names_in(dir), std::vector<std::string>{"net_iter_20.caffemodel"});
  const mode_t mask = umask(0);
  umask(mask);
  struct stat st {};
  ASSERT_EQ(stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask);
}

TEST(SnapshotWrites, AFailedHdf5WriteLeavesTheEarlierFileAsItWas) {
  TempDir dir;
  caffe::Net<float> net(parse_net_text(kTinyNet, "tiny"));
  const std::string target = dir.file("net_iter_30.caffemodel.h5", kEarlier);
  EXPECT_ANY_THROW(under_file_size_limit(512, [&] { net.ToHDF5(target); }));
  EXPECT_EQ(contents(target), kEarlier);
  EXPECT_EQ(names_in(dir), std::vector<std::string>{"net_iter_30.caffemodel.h5"});
  net.ToHDF5(target);  // and unlimited, it is written whole
  EXPECT_GT(std::filesystem::file_size(target), 512u);
}

}  // namespace
}  // namespace surgery::test
