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
  -DCAFFE_SOURCE_DIR="$src" -DCMAKE_INSTALL_PREFIX="$work/install" >&2
cmake --build "$work/build" -j "$jobs" >&2
cmake --install "$work/build" >&2
touch "$work/install/.complete"
rm -rf "$prefix"
mv "$work/install" "$prefix"
log "done: $prefix"
echo "$prefix"
