#!/usr/bin/env bash
# The two quick-start commands (README):
#   ./run.sh demo   installs what is missing, then runs the main job
#   ./run.sh test   installs what is missing, then runs every test (ctest + pytest)
#                   and builds the documentation site (mkdocs --strict)
#   ./run.sh wheel [3.11 ...]  self-contained manylinux wheels into dist/, one
#                   per CPython 3.10-3.13 found here (distribution/wheels.sh)
#   ./run.sh quick  the inner loop: an editable install whose build folder is kept
#                   (only what changed is rebuilt), plain ctest, pytest -m "not slow"
# What is installed: Debian packages (apt, as root), a virtual environment in
# .venv, libcaffe (built once, cached in ~/.cache/caffe-surgery), the package.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

APT_PACKAGES=(build-essential cmake patch libprotobuf-dev protobuf-compiler
  libgoogle-glog-dev libgflags-dev libboost-system-dev libboost-filesystem-dev
  libboost-thread-dev zlib1g-dev libopenblas-dev libgtest-dev libssl-dev libdnnl-dev
  ocl-icd-opencl-dev  # libdnnl-dev only recommends it, but its CMake config requires OpenCL
  clang libclang-rt-14-dev)  # the last two: libFuzzer and the sanitizers (hardening/fuzz)
# Only the tests need these: Graphviz's dot, which caffe.draw (pydot) runs.
TEST_APT_PACKAGES=(graphviz)
VENV=${SURGERY_VENV:-.venv}
PYTHON=${PYTHON:-python3}
export CAFFE_SURGERY_JOBS=${CAFFE_SURGERY_JOBS:-$(nproc)}

say() { echo "== $*" >&2; }

install_system_packages() {  # $@: packages wanted beyond APT_PACKAGES
  local wanted=("${APT_PACKAGES[@]}" "$@")
  # Debian's own python3 needs these for a venv and for building extensions.
  command -v "$PYTHON" >/dev/null || wanted+=(python3)
  if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then wanted+=(python3-venv); fi
  if ! "$PYTHON" -c 'import sysconfig, os, sys
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null
  then wanted+=(python3-dev); fi
  local missing=()
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    say "apt-get install ${missing[*]}"
    local sudo=(); [[ $(id -u) == 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

install_package() {  # $1: pip extras, $2..: extra pip arguments
  local extras=$1; shift
  [[ -x "$VENV/bin/python" ]] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
  # libcaffe first, on its own, so its (one-time) build shows progress.
  CAFFE_SURGERY_PYTHON="$VENV/bin/python" bash third_party/caffe/build.sh >/dev/null
  say "pip install .$extras"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet ".$extras" "$@"
}

# benchmarks/plain_caffe linked to a stock libcaffe (third_party/caffe-stock:
# the same sdist without our patches; built once, cached) in build/stock, for
# tests/python/test_stock_caffe.py, which fails where it is missing.
build_stock_plain_caffe() {
  local prefix
  prefix=$(CAFFE_SURGERY_PYTHON="$VENV/bin/python" bash third_party/caffe-stock/build.sh) ||
    return 1
  cmake -S benchmarks/stock -B build/stock -DCaffe_DIR="$prefix/lib/cmake/Caffe" >/dev/null ||
    return 1
  cmake --build build/stock -j "$CAFFE_SURGERY_JOBS" >/dev/null || return 1
  export SURGERY_STOCK_CAFFE=$PWD/build/stock/plain_caffe
}

case "${1:-}" in
  demo)
    install_system_packages
    install_package "[demo]"
    "$VENV/bin/caffe-surgery" demo
    ;;
  test)
    install_system_packages "${TEST_APT_PACKAGES[@]}"
    # The C++ tests and benchmarks/plain_caffe (the baseline that
    # tests/python/test_plain_caffe.py checks) are built in the same (kept)
    # build folder as the extension.
    install_package "[test,fuzz,docs]" --config-settings=build-dir=build/test \
      --config-settings=cmake.define.SURGERY_BUILD_TESTS=ON \
      --config-settings=cmake.define.SURGERY_BUILD_BENCHMARKS=ON
    status=0
    # Its first build: 17 minutes on 2 cores (shared with another build).
    say "benchmarks/plain_caffe on a stock libcaffe (third_party/caffe-stock)"
    build_stock_plain_caffe || status=1
    say "ctest"
    ctest --test-dir build/test --output-on-failure || status=1
    say "ctest under AddressSanitizer + LeakSanitizer"
    cmake -S . -B build/asan -DSURGERY_BUILD_TESTS=ON -DSURGERY_SANITIZE=ON >/dev/null
    cmake --build build/asan -j "$CAFFE_SURGERY_JOBS" >/dev/null
    ctest --test-dir build/asan --output-on-failure || status=1
    say "ctest -R 'NetGuard|SpanThread|Digest' under ThreadSanitizer (threads sharing one net, the digest's thread)"
    cmake -S . -B build/tsan -DSURGERY_BUILD_TESTS=ON -DSURGERY_SANITIZE=thread >/dev/null
    cmake --build build/tsan -j "$CAFFE_SURGERY_JOBS" >/dev/null
    ctest --test-dir build/tsan -R 'NetGuard|SpanThread|Digest' --output-on-failure || status=1
    say "pytest"
    "$VENV/bin/python" -m pytest -q tests/python || status=1
    say "the wheel: built from build/test, then checked installed (tests/wheel/check_wheel.sh)"
    version=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    distribution/wheels.sh "$version" || status=1
    tests/wheel/check_wheel.sh || status=1
    say "mkdocs build --strict (the site in docs/, into build/site; a warning fails it)"
    NO_MKDOCS_2_WARNING=1 "$VENV/bin/mkdocs" build --strict --quiet || status=1
    say "fuzz targets: replay the corpus and crash inputs, then 20 s each"
    # Against the shared libcaffe: the instrumented one takes 15-30 minutes
    # to build once; the full campaign (hardening/fuzz/run.sh campaign) uses it.
    SURGERY_FUZZ_CAFFE=plain hardening/fuzz/run.sh ci || status=1
    exit $status
    ;;
  wheel)
    install_system_packages
    shift
    distribution/wheels.sh "$@"
    ;;
  quick)
    install_system_packages "${TEST_APT_PACKAGES[@]}"
    # Editable: the Python sources are imported from src/python, so a Python
    # change needs no reinstall; build/quick is kept, so a C++ change
    # recompiles only its own files. Without build isolation pip does not
    # make a fresh build environment each time (the seconds the loop is for),
    # so the build requirements live in the venv. The bindings are linked
    # without link-time optimisation (pybind11's default in Release), which
    # recompiled all of them at every relink: 35 of the 67 s that a one-line
    # C++ change cost. The core, a plain static library, is built the same.
    [[ -x "$VENV/bin/python" ]] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
    CAFFE_SURGERY_PYTHON="$VENV/bin/python" bash third_party/caffe/build.sh >/dev/null
    "$VENV/bin/python" -c 'import scikit_build_core, pybind11' 2>/dev/null ||
      "$VENV/bin/python" -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.12"
    deps=(); "$VENV/bin/python" -c 'import surgery' 2>/dev/null && deps=(--no-deps)
    say "pip install -e .[test] (build/quick)"
    "$VENV/bin/python" -m pip install --quiet --no-build-isolation "${deps[@]}" -e ".[test]" \
      --config-settings=build-dir=build/quick \
      --config-settings=cmake.define.SURGERY_BUILD_TESTS=ON \
      --config-settings=cmake.define.CMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF
    status=0
    say "ctest"
    ctest --test-dir build/quick --output-on-failure -j "$CAFFE_SURGERY_JOBS" || status=1
    say "pytest -m 'not slow', one worker per core"
    # Spread over the cores (pytest-xdist): 78 s instead of 125 s on 2 cores,
    # which keeps the loop under 2 minutes. ./run.sh test stays serial, as CI.
    "$VENV/bin/python" -c 'import xdist' 2>/dev/null ||
      "$VENV/bin/python" -m pip install --quiet "pytest-xdist>=3"
    # The slowest tests, for the next one to mark slow.
    "$VENV/bin/python" -m pytest -q -n "$CAFFE_SURGERY_JOBS" -m "not slow" --durations=15 \
      tests/python || status=1
    exit $status
    ;;
  *)
    echo "usage: $0 demo|test|quick|wheel [3.11 ...]" >&2
    exit 2
    ;;
esac
