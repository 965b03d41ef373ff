// The HDF5 layers and the files they open (third_party/caffe/patches/0005).
// HDF5Data kept its file open when it refused a dataset: each refused load
// left an open file behind in the HDF5 library, and the process could then
// not rewrite that file. HDF5Output's destructor CHECKed its close, and a
// CHECK cannot throw from a destructor: a failed close ended the process.
// Both layers touch files, so these nets load with trust_io_layers.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "surgery/base/errors.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/runtime/net.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

Net trusted(const std::string& text) {
  LoadPolicy policy;
  policy.trust_io_layers = true;
  return Net(parse_net_text(text, "net"), "net", caffe::TEST, policy);
}

// Files open in this process's HDF5 library.
ssize_t open_hdf5_files() { return H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE); }

// Writes `path` afresh with one float dataset `name` of shape `dims`
// (empty: a scalar, which HDF5Data refuses: it needs at least one axis).
// False where HDF5 refuses to truncate it (a file still open here).
bool write_hdf5(const std::string& path, const std::string& name,
                const std::vector<hsize_t>& dims, const std::vector<float>& values) {
  // HDF5 prints its error stack on failure; the result says it.
  H5E_auto2_t print;
  void* data;
  H5Eget_auto2(H5E_DEFAULT, &print, &data);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Eset_auto2(H5E_DEFAULT, print, data);
  if (file < 0) return false;
  const hid_t space = dims.empty() ? H5Screate(H5S_SCALAR)
                                   : H5Screate_simple(static_cast<int>(dims.size()),
                                                      dims.data(), nullptr);
  const hid_t set = H5Dcreate2(file, name.c_str(), H5T_NATIVE_FLOAT, space, H5P_DEFAULT,
                               H5P_DEFAULT, H5P_DEFAULT);
  const herr_t written =
      H5Dwrite(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  H5Dclose(set);
  H5Sclose(space);
  return H5Fclose(file) >= 0 && written >= 0;
}

// The identifier HDF5 holds open for `path` in this process; -1 if none.
hid_t open_file_named(const std::string& path) {
  std::vector<hid_t> ids(static_cast<size_t>(std::max<ssize_t>(open_hdf5_files(), 0)));
  const ssize_t listed = H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_FILE, ids.size(), ids.data());
  ids.resize(static_cast<size_t>(std::max<ssize_t>(listed, 0)));
  for (const hid_t id : ids) {
    char name[4096];
    if (H5Fget_name(id, name, sizeof name) > 0 && path == name) return id;
  }
  return -1;
}

std::string hdf5_data_net(const std::string& list) {
  return R"(layer { name: "reader" type: "HDF5Data" top: "data"
                    hdf5_data_param { source: ")" + list + R"(" batch_size: 1 } })";
}

// A dataset missing, then one without axes: each refused, each time the file
// is closed again, rewritable, and a good file loads and reads afterwards.
TEST(Hdf5Layers, RefusedDatasetClosesItsFile) {
  TempDir dir;
  const std::string h5 = dir.file("rows.h5");
  const std::string list = dir.file("list.txt", h5 + "\n");
  const ssize_t before = open_hdf5_files();

  ASSERT_TRUE(write_hdf5(h5, "other", {2, 3}, {0, 1, 2, 3, 4, 5}));
  try {
    trusted(hdf5_data_net(list));
    FAIL() << "a file without the dataset 'data' was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Failed to find HDF5 dataset data"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(open_hdf5_files(), before);

  ASSERT_TRUE(write_hdf5(h5, "data", {}, {7})) << "the refused file is still open";
  EXPECT_THROW(trusted(hdf5_data_net(list)), Error);
  EXPECT_EQ(open_hdf5_files(), before);

  ASSERT_TRUE(write_hdf5(h5, "data", {2, 3}, {0, 1, 2, 3, 4, 5}))
      << "the refused file is still open";
  Net net = trusted(hdf5_data_net(list));
  EXPECT_EQ(open_hdf5_files(), before);  // read whole at load, closed
  net.forward({});
  const caffe::Blob<float>& row = net.blob("data");
  ASSERT_EQ(row.shape(), (std::vector<int>{1, 3}));
  EXPECT_EQ(std::vector<float>(row.cpu_data(), row.cpu_data() + 3), (std::vector<float>{0, 1, 2}));
}

// The output file closed behind the layer's back: its own close then fails,
// which is logged, and the process goes on (in a child: the old CHECK ended it).
TEST(Hdf5Layers, FailedCloseOfTheOutputFileIsNotFatal) {
  TempDir dir;
  const std::string h5 = dir.file("out.h5");
  EXPECT_EXIT(
      {
        {
          Net net = trusted(R"(
            layer { name: "data" type: "Input" top: "data" top: "label"
                    input_param { shape { dim: 1 dim: 2 } shape { dim: 1 } } }
            layer { name: "save" type: "HDF5Output" bottom: "data" bottom: "label"
                    hdf5_output_param { file_name: ")" + h5 + R"(" } })");
          const hid_t file = open_file_named(h5);
          if (file < 0 || H5Fclose(file) < 0) std::exit(3);
        }  // ~HDF5OutputLayer closes file_id_ again: that close fails
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace surgery::test
