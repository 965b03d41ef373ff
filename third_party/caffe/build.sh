#!/usr/bin/env bash
# Builds libcaffe once per (source, recipe, variant) and caches the install tree.
#
#   third_party/caffe/build.sh            -> prints the install prefix on stdout
#
# Source: the brocolli-caffe sdist from PyPI, fetched with pip by name and
# checked against a pinned sha256. Cache: $CAFFE_SURGERY_CACHE, default
# ${XDG_CACHE_HOME:-~/.cache}/caffe-surgery. Progress goes to stderr.
# Environment: CAFFE_SURGERY_JOBS (default: nproc), CAFFE_SURGERY_PYTHON
# (the Python whose pip fetches the sdist, default python3), CAFFE_SURGERY_BLAS
# (scipy-openblas, the default on x86-64, or system: Debian's OpenBLAS),
# CAFFE_SURGERY_VARIANT (cpu, the default, or cuda: GPU build with nvcc from
# CUDACXX or /usr/local/cuda-13.0, cuBLAS and cuRAND from their PyPI wheels).
set -euo pipefail

readonly VERSION=9.0.2
readonly SHA256=c6410cc60bdd6db685d441b66be7df05410f8850ac88d6b75d48ef9b2315c08a
readonly VARIANT=${CAFFE_SURGERY_VARIANT:-cpu}
case $VARIANT in
  cpu|cuda) ;;
  *) echo "[libcaffe] CAFFE_SURGERY_VARIANT must be cpu or cuda, not '$VARIANT'" >&2; exit 2 ;;
esac
# A newer OpenBLAS than Debian's, from PyPI; x86-64 only (the pin is that wheel's).
readonly BLAS_VERSION=0.3.34.481.3
readonly BLAS_SHA256=0595f94cd58c1f8a0d90c975621f4587337a003916b1979e834ebdf2cb5d9504
# cuda variant: cuBLAS and cuRAND of the CUDA 13.0 line (nvcc 13.0 builds
# it), from PyPI's manylinux x86-64 wheels; their .so files travel with libcaffe.
readonly CUBLAS_VERSION=13.0.2.14
readonly CUBLAS_SHA256=0cf238ffdbe46c00cb9aa98e7bca745c223a5ca5a53e686ac8b3e5a08fe80d6c
readonly CURAND_VERSION=10.4.0.35
readonly CURAND_SHA256=1aee33a5da6e1db083fe2b90082def8915f30f3248d5896bcec36a579d941bfc
# HDF5 from Debian's source package, built here without network drivers:
# Debian's libhdf5 links libcurl for its ros3 driver, and 25 network
# libraries behind it, which a wheel would have to carry. Ours is static and
# position-independent, and goes inside libcaffe.so.
readonly HDF5_DEB_VERSION=1.10.8+repack1-1
readonly HDF5_ORIG=hdf5_1.10.8+repack1.orig.tar.gz
readonly HDF5_SHA256=7b38e58ff83b13fd8959a90b13bf896bc318ba096c940ab0847abf3ad41a0b31
blas=${CAFFE_SURGERY_BLAS:-$([[ $(uname -m) == x86_64 ]] && echo scipy-openblas || echo system)}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${CAFFE_SURGERY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/caffe-surgery}
python=${CAFFE_SURGERY_PYTHON:-python3}
jobs=${CAFFE_SURGERY_JOBS:-$(nproc)}
log() { echo "[libcaffe] $*" >&2; }

# The key changes whenever any file of this recipe changes, except its
# documentation (patches/README.md): a reworded row must not rebuild libcaffe.
recipe_hash=$(cd "$here" && find . -type f ! -name '*.md' | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)
prefix="$cache/libcaffe/$VERSION-${SHA256:0:12}-$recipe_hash-$VARIANT-$blas"
if [[ -f "$prefix/.complete" ]]; then
  log "cached: $prefix"
  echo "$prefix"
  exit 0
fi

if [[ $VARIANT == cuda ]]; then
  [[ $(uname -m) == x86_64 ]] || { log "the cuda variant is pinned to x86-64 wheels"; exit 1; }
  nvcc=$(command -v "${CUDACXX:-/usr/local/cuda-13.0/bin/nvcc}") ||
    { log "no nvcc at ${CUDACXX:-/usr/local/cuda-13.0/bin/nvcc} (set CUDACXX)"; exit 1; }
fi

# series DIR: the patches of DIR in the order DIR/series lists them (quilt's
# format: a file name a line, # starts a comment). The series is the one
# truth: a listed patch that is missing, or a patch file it does not list,
# stops the build rather than being skipped or applied out of order.
series() {
  local dir=$1 line name listed=() p
  [[ -f "$dir/series" ]] || { log "no series file in $dir"; exit 1; }
  while IFS= read -r line || [[ -n $line ]]; do
    read -r name _ <<<"${line%%#*}"
    [[ -n ${name:-} ]] || continue
    [[ -f "$dir/$name" ]] || { log "$dir/series lists $name, which is not there"; exit 1; }
    listed+=("$name")
  done <"$dir/series"
  for p in "$dir"/*.patch; do
    [[ -f $p ]] || continue
    [[ " ${listed[*]} " == *" ${p##*/} "* ]] ||
      { log "${p##*/} is in $dir but not in its series file; list it or delete it"; exit 1; }
  done
  printf '%s\n' "${listed[@]/#/$dir/}"
}

# Read before anything is fetched or built, so a broken series fails at once.
# patches/README.md says what each patch does and why; the series files say in
# which order (each patch's DEP-3 header names the earlier ones it edits).
patches=$(series "$here/patches")
if [[ $VARIANT == cuda ]]; then
  # CUDA 13 fixes, only for this variant (some undo what CPU_ONLY needs).
  patches+=$'\n'$(series "$here/patches/cuda")
fi
mkdir -p "$cache/src" "$cache/libcaffe"
# One builder at a time; a second waits, then finds the cache filled.
exec 9>"$cache/libcaffe/.lock"
flock 9
if [[ -f "$prefix/.complete" ]]; then echo "$prefix"; exit 0; fi

# Inside pip's isolated build environment `python -m pip` may be missing;
# the pip on PATH then belongs to the same user.
pip=("$python" -m pip)
"${pip[@]}" --version >/dev/null 2>&1 || pip=(pip3)

# fetch NAME==VERSION FILE SHA256: a pinned file from PyPI, checked, cached.
fetch() {
  local spec=$1 file=$2 sum=$3 kind=$4
  if [[ -f "$cache/src/$file" ]] && echo "$sum  $cache/src/$file" | sha256sum --check --status; then
    return
  fi
  log "fetching $spec with pip"
  local dl
  dl=$(mktemp -d)
  "${pip[@]}" download --quiet --no-deps "$kind" -d "$dl" "$spec" >&2
  if ! echo "$sum  $dl/$file" | sha256sum --check --status; then
    log "sha256 mismatch for $file: expected $sum"
    exit 1
  fi
  mv "$dl/$file" "$cache/src/$file"
  rm -rf "$dl"
}

# fetch_debian_source PACKAGE=VERSION FILE SHA256: a pinned file of a Debian
# source package, with apt-get and a private list of sources (the deb-src twin
# of the archive that installed libc6 here), so the system's own apt
# configuration is neither needed nor changed, and no root either.
fetch_debian_source() {
  local spec=$1 file=$2 sum=$3
  if [[ -f "$cache/src/$file" ]] && echo "$sum  $cache/src/$file" | sha256sum --check --status; then
    return
  fi
  local origin uri suite component apt dl
  origin=$(apt-cache policy libc6 | awk '/^ +[0-9]+ [a-z]+:\/\// && $3 ~ /\/main$/ {print $2, $3; exit}')
  read -r uri suite <<<"$origin"
  [[ -n ${suite:-} ]] || { log "cannot tell which Debian archive this machine uses (apt-cache policy libc6); run apt-get update"; exit 1; }
  component=${suite#*/}; suite=${suite%%/*}
  log "fetching the source of $spec with apt-get"
  apt=$(mktemp -d)
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc" "$apt/dl"
  echo "deb-src $uri $suite $component" >"$apt/etc/sources.list"
  local options=(-o Dir::Etc::SourceList="$apt/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" -o Debug::NoLocking=1
    -o APT::Sandbox::User=root -qq)
  apt-get "${options[@]}" update >&2
  (cd "$apt/dl" && apt-get "${options[@]}" source --download-only "$spec" >&2)
  if ! echo "$sum  $apt/dl/$file" | sha256sum --check --status; then
    log "sha256 mismatch for $file: expected $sum"
    exit 1
  fi
  mv "$apt/dl/$file" "$cache/src/$file"
  rm -rf "$apt"
}

sdist="$cache/src/brocolli-caffe-$VERSION.tar.gz"
fetch "brocolli-caffe==$VERSION" "brocolli-caffe-$VERSION.tar.gz" "$SHA256" --no-binary=:all:
work=$(mktemp -d "$cache/libcaffe/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$sdist" -C "$work"
src="$work/brocolli-caffe-$VERSION"
# Generated by protobuf 3.0; we regenerate them with this machine's protoc.
rm -f "$src/include/caffe/proto/caffe.pb.h" "$src/src/caffe/proto/caffe.pb.cc"
while IFS= read -r p; do
  patch --quiet -p1 -d "$src" < "$p" || { log "patch ${p#"$here"/} did not apply"; exit 1; }
done <<<"$patches"

fetch_debian_source "hdf5=$HDF5_DEB_VERSION" "$HDF5_ORIG" "$HDF5_SHA256"
mkdir "$work/hdf5-src" "$work/hdf5-build"
tar -xzf "$cache/src/$HDF5_ORIG" -C "$work/hdf5-src" --strip-components=1
log "building HDF5 (static, position-independent, no network drivers)"
# From inside its build folder: HDF5 1.10's configure checks write their
# results to the current directory.
(cd "$work/hdf5-build" && cmake -S "$work/hdf5-src" -B . -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DBUILD_STATIC_LIBS=ON -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DBUILD_TESTING=OFF -DHDF5_BUILD_TOOLS=OFF -DHDF5_BUILD_UTILS=OFF -DHDF5_BUILD_EXAMPLES=OFF \
  -DHDF5_BUILD_CPP_LIB=OFF -DHDF5_BUILD_FORTRAN=OFF -DHDF5_BUILD_JAVA=OFF -DHDF5_BUILD_HL_LIB=ON \
  -DHDF5_ENABLE_Z_LIB_SUPPORT=ON -DHDF5_ENABLE_SZIP_SUPPORT=OFF -DHDF5_ENABLE_ROS3_VFD=OFF \
  -DHDF5_ENABLE_HDFS=OFF -DCMAKE_INSTALL_PREFIX="$work/hdf5" >"$work/hdf5-build/configure.log" 2>&1) ||
  { cat "$work/hdf5-build/configure.log" >&2; log "configuring HDF5 failed"; exit 1; }
cmake --build "$work/hdf5-build" -j "$jobs" >&2
cmake --install "$work/hdf5-build" >/dev/null

blas_args=()
if [[ $blas == scipy-openblas ]]; then
  wheel="scipy_openblas32-$BLAS_VERSION-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
  fetch "scipy-openblas32==$BLAS_VERSION" "$wheel" "$BLAS_SHA256" --only-binary=:all:
  "$python" -m zipfile -e "$cache/src/$wheel" "$work/blas"
  blas_args=(-DSCIPY_OPENBLAS_DIR="$work/blas/scipy_openblas32")
fi

variant_args=()
minutes=3
if [[ $VARIANT == cuda ]]; then
  for spec in "cublas $CUBLAS_VERSION $CUBLAS_SHA256" "curand $CURAND_VERSION $CURAND_SHA256"; do
    read -r name version sum <<<"$spec"
    wheel="nvidia_$name-$version-py3-none-manylinux_2_27_x86_64.whl"
    fetch "nvidia-$name==$version" "$wheel" "$sum" --only-binary=:all:
    "$python" -m zipfile -e "$cache/src/$wheel" "$work/$name"
  done
  variant_args=(-DCAFFE_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc"
    -DCUBLAS_ROOT="$work/cublas/nvidia/cu13" -DCURAND_ROOT="$work/curand/nvidia/cu13")
  minutes=8
fi

log "building ($VARIANT, $blas BLAS, -j$jobs) into $prefix; about $minutes minutes on 2 cores"
cmake -S "$here" -B "$work/build" -DCMAKE_BUILD_TYPE=Release "${blas_args[@]}" "${variant_args[@]}" \
  -DCAFFE_SOURCE_DIR="$src" -DCAFFE_HDF5_PREFIX="$work/hdf5" -DCMAKE_INSTALL_PREFIX="$work/install" >&2
cmake --build "$work/build" -j "$jobs" >&2
cmake --install "$work/build" >&2
touch "$work/install/.complete"
rm -rf "$prefix"
mv "$work/install" "$prefix"
log "done: $prefix"
echo "$prefix"
