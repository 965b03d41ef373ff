#!/usr/bin/env bash
# Builds, on this (Debian 12) machine, everything the GPU checks need on a
# GPU machine that can fetch nothing and has no Caffe build dependencies:
#   .gpu-kit/wheels/    the package built for the GPU machine's Python, cuda
#                       variant, cuBLAS/cuRAND left to the machine's own CUDA
#   .gpu-kit/bin/       the C++ tests, benchmarks/plain_caffe and gpu_profile
#   .gpu-kit/lib/       the shared libraries that machine lacks
#   .gpu-kit/fixtures/  the shared fixtures the checks read
# Then gpu/run_kit.sh runs the checks there (gpu/README.md).
#
#   gpu/make_kit.sh [KIT_DIR]      (KIT_DIR defaults to .gpu-kit, which git ignores)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KIT=$(realpath -m "${1:-$ROOT/.gpu-kit}")
# The GPU machine's Python is 3.12: the extension is built for that version.
KIT_PYTHON=${CAFFE_SURGERY_KIT_PYTHON:-python3.12}
"$KIT_PYTHON" --version >/dev/null 2>&1 ||
  { echo "no $KIT_PYTHON here: set CAFFE_SURGERY_KIT_PYTHON to a Python 3.12 interpreter" >&2; exit 1; }
JOBS=${CAFFE_SURGERY_JOBS:-$(nproc)}
FIXTURES=${SURGERY_FIXTURES:-$ROOT/../shared/fixtures}
# The GPU machine has CUDA 13's libraries, protobuf 3.21, HDF5 1.10 and
# OpenBLAS, but not these (../shared/notes/caffe-build.md, "CUDA"); oneDNN
# (the opt-in convolution="onednn") with the OpenCL loader it links.
CARRIED_LIBRARIES=(libglog.so.1 libgflags.so.2.2 libboost_filesystem.so.1.74.0
  libboost_thread.so.1.74.0 libunwind.so.8 libdnnl.so.2 libOpenCL.so.1)

say() { echo "== $*" >&2; }

say "cuda libcaffe (built once, then cached)"
prefix=$(CAFFE_SURGERY_VARIANT=cuda bash "$ROOT/third_party/caffe/build.sh")
caffe_dir=$prefix/lib/cmake/Caffe

rm -rf "$KIT"
mkdir -p "$KIT"/{bin,lib,wheels}

# One build, as ./run.sh test does it: the wheel's build folder also builds
# the C++ tests and plain_caffe, so the core (and dilated_pooling.cu) is
# compiled once, not once for the tests and again for the wheel.
build=$ROOT/build/gpu-kit-wheel
say "the package for $("$KIT_PYTHON" --version), the C++ tests and the plain Caffe baseline"
CMAKE_BUILD_PARALLEL_LEVEL=$JOBS "$KIT_PYTHON" -m pip wheel --quiet --no-deps \
  --wheel-dir "$KIT/wheels" "$ROOT" \
  --config-settings=build-dir="$build" \
  --config-settings=cmake.define.Caffe_DIR="$caffe_dir" \
  --config-settings=cmake.define.SURGERY_BUNDLE_CUDA_LIBRARIES=OFF \
  --config-settings=cmake.define.SURGERY_BUILD_TESTS=ON \
  --config-settings=cmake.define.SURGERY_BUILD_BENCHMARKS=ON
cp "$build/tests/cpp/surgery_tests" "$build/benchmarks/plain_caffe" "$build/benchmarks/gpu_profile" \
  "$KIT/bin/"

say "shared libraries the GPU machine lacks"
for name in "${CARRIED_LIBRARIES[@]}"; do
  # awk reads all of ldconfig's output: exiting early would fail the pipe (pipefail).
  path=$(ldconfig -p | awk -v n="$name" '$1 == n && /x86-64/ && !p {p = $NF} END {print p}')
  [[ -n $path ]] || { echo "not on this machine: $name (run ./run.sh test first)" >&2; exit 1; }
  cp -L "$path" "$KIT/lib/$name"
done

cp -r "$FIXTURES" "$KIT/fixtures"
du -sh "$KIT" >&2
