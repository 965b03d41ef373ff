#!/usr/bin/env bash
# Builds a stock libcaffe: the same sdist, HDF5, BLAS and compiler flags as
# ../caffe/build.sh (it runs that recipe), but with none of our patches
# except the build fixes that `series` here lists. It is the oracle for what
# our patches change in the results (their rounding: LRN by 0009 and 0011,
# the streamed GEMM of 0012; ../caffe/patches/README.md, "The stock build").
#
#   third_party/caffe-stock/build.sh      -> prints the install prefix on stdout
#
# The recipe's own key hashes every file of ../caffe, so the stock variant
# cannot live there without rebuilding the patched libcaffe. It runs a copy of
# the recipe instead, whose patches/ holds only the listed ones: the copy's
# key covers build.sh, CMakeLists.txt and those patches, so it changes with
# the recipe. Its cache root is $cache/stock (the fetched sources shared),
# so its entries never mix with the patched ones.
# Environment: as ../caffe/build.sh; CAFFE_SURGERY_VARIANT must be cpu.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
recipe="$here/../caffe"
cache=${CAFFE_SURGERY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/caffe-surgery}
if [[ ${CAFFE_SURGERY_VARIANT:-cpu} != cpu ]]; then
  echo "[libcaffe-stock] only the cpu variant has a stock build, not '$CAFFE_SURGERY_VARIANT'" >&2
  exit 2
fi

# One copy at a fixed path, so that ccache (CCACHE_BASEDIR) sees the same
# -include of check_throws.hpp at every rebuild; one stock build at a time.
mkdir -p "$cache/stock"
exec 8>"$cache/stock/.recipe.lock"
flock 8
copy="$cache/stock/recipe"
rm -rf "$copy"
mkdir -p "$copy/patches"
find "$recipe" -maxdepth 1 -type f ! -name '*.md' -exec cp {} "$copy/" \;
cp "$here/series" "$copy/patches/series"
while IFS= read -r line || [[ -n $line ]]; do
  read -r name _ <<<"${line%%#*}"
  [[ -n ${name:-} ]] || continue
  cp "$recipe/patches/$name" "$copy/patches/" ||
    { echo "[libcaffe-stock] series lists $name, which ../caffe/patches does not have" >&2
      exit 1; }
done <"$here/series"

# The fetched sources are the patched recipe's: one download for both.
mkdir -p "$cache/src"
[[ -e "$cache/stock/src" ]] || ln -s ../src "$cache/stock/src"
CAFFE_SURGERY_CACHE="$cache/stock" CAFFE_SURGERY_VARIANT=cpu bash "$copy/build.sh"
