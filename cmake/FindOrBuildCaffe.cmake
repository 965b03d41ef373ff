# Provides the imported target `caffe`.
#
# A user who has Caffe points CMake at it (-DCaffe_DIR=<prefix>/lib/cmake/Caffe
# or CMAKE_PREFIX_PATH=<prefix>); otherwise third_party/caffe/build.sh builds
# libcaffe once and caches it outside the source tree, and we use that.
#
# A Caffe_DIR that came from the recipe is resolved again at every configure,
# and any change to the recipe reconfigures: a kept build folder must not go
# on linking the libcaffe of an older recipe (another hash, other patches).
if(SURGERY_CAFFE_FROM_RECIPE)
  unset(Caffe_DIR CACHE)
endif()
find_package(Caffe CONFIG QUIET)
if(NOT Caffe_FOUND)
  find_package(Python COMPONENTS Interpreter QUIET)
  set(_surgery_python python3)
  if(Python_EXECUTABLE)
    set(_surgery_python "${Python_EXECUTABLE}")
  endif()
  message(STATUS "No Caffe given: building or reusing the cached libcaffe (third_party/caffe)")
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env "CAFFE_SURGERY_PYTHON=${_surgery_python}"
            bash "${CMAKE_CURRENT_LIST_DIR}/../third_party/caffe/build.sh"
    OUTPUT_VARIABLE _surgery_caffe_prefix
    OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _surgery_caffe_result)
  if(NOT _surgery_caffe_result EQUAL 0)
    message(FATAL_ERROR "Building libcaffe failed (third_party/caffe/build.sh); see the log above")
  endif()
  find_package(Caffe CONFIG REQUIRED PATHS "${_surgery_caffe_prefix}" NO_DEFAULT_PATH)
  set(SURGERY_CAFFE_FROM_RECIPE ON CACHE INTERNAL "Caffe_DIR was resolved from third_party/caffe")
  # CONFIGURE_DEPENDS: a new patch file reconfigures too, not only an edited one.
  file(GLOB_RECURSE _surgery_recipe_files CONFIGURE_DEPENDS
       "${CMAKE_CURRENT_LIST_DIR}/../third_party/caffe/*")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_surgery_recipe_files})
endif()
message(STATUS "Caffe: ${Caffe_DIR} (failed CHECKs throw: ${Caffe_CHECKS_THROW})")
