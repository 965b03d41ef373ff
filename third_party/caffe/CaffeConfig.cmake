# Installed beside CaffeTargets.cmake by the caffe-surgery libcaffe recipe.
include(CMakeFindDependencyMacro)
find_dependency(Protobuf)
find_dependency(HDF5 COMPONENTS C HL)
find_dependency(Boost COMPONENTS system filesystem thread)
find_dependency(glog)
find_dependency(gflags)
include("${CMAKE_CURRENT_LIST_DIR}/CaffeTargets.cmake")
# This libcaffe throws caffe_check::CheckFailure on a failed CHECK.
set(Caffe_CHECKS_THROW ON)
set(Caffe_CUDA OFF)
# Shared libraries that travel with libcaffe (a bundled BLAS), for packagers.
file(GLOB Caffe_BUNDLED_LIBRARIES "${CMAKE_CURRENT_LIST_DIR}/../../libscipy_openblas*.so")
