#!/usr/bin/env bash
# Checks a self-contained wheel as a user without our build tree gets it
# (./run.sh test runs it after pytest; as root, for the mount namespace):
#   1. auditwheel show: the wheel is manylinux_2_34 and needs no library
#      outside the policy's list; it carries at most 12 shared libraries,
#      no network library, and licence texts;
#   2. with every system library hidden except the policy's and the
#      interpreter's own (a mount namespace whose /usr/lib/x86_64-linux-gnu
#      holds only those), LD_LIBRARY_PATH unset, in a fresh venv (no system
#      site packages): `pip install` of the wheel and `caffe-surgery demo`
#      work; the source install (VENV, linked against the system's protobuf,
#      glog and boost) fails to import, which proves the hiding hides; after
#      a forward every mapped library is the policy's, the interpreter's or
#      installed; the pytest subset marked `wheel` passes;
#   3. the wheel's dense map equals the source install's, bit for bit.
#
#   tests/wheel/check_wheel.sh [WHEEL]   (default: dist/'s wheel for VENV's Python)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
VENV=${SURGERY_VENV:-.venv}
readonly PLAT=manylinux_2_34
tools=build/wheel/tools
say() { echo "== $*" >&2; }
fail() { echo "FAILED: $*" >&2; exit 1; }

python=$("$VENV/bin/python" -c 'import sys; print(sys._base_executable)')
tag=$("$VENV/bin/python" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
wheel=${1:-$(ls dist/caffe_surgery-*-"$tag"-"$tag"-"$PLAT"_x86_64.whl 2>/dev/null | tail -1)}
[[ -f $wheel ]] || fail "no $tag wheel in dist/: run ./run.sh wheel first"
wheel=$(realpath "$wheel")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# hide ALLOWED COMMAND...: COMMAND in a mount namespace where the system's
# library folder shows only the sonames listed in ALLOWED (links into a
# private bind mount of the real folder), without LD_LIBRARY_PATH.
hide() {
  local allowed=$1; shift
  unshare --mount --propagation private -- bash -c '
    set -euo pipefail
    allowed=$1 lib=/usr/lib/x86_64-linux-gnu; shift
    real=$(mktemp -d) view=$(mktemp -d)
    mount --bind "$lib" "$real"
    mount -t tmpfs hidden "$view"
    while read -r name; do
      if [[ -e $lib/$name ]]; then ln -s "$real/$name" "$view/$name"; fi
    done <"$allowed"
    mount --move "$view" "$lib"
    exec env -u LD_LIBRARY_PATH "$@"' hide "$allowed" "$@"
}

say "auditwheel show $(basename "$wheel")"
"$tools/bin/python" tests/wheel/policy_libraries.py "$PLAT" "$python" >"$scratch/allowed"
"$tools/bin/auditwheel" show --json "$wheel" >"$scratch/show.json"
"$tools/bin/python" tests/wheel/external_libraries.py "$scratch/show.json" "$PLAT"
"$tools/bin/python" tests/wheel/vendored_set.py "$wheel"

say "fresh venv, system libraries hidden but the policy's and $(basename "$python")'s own"
hide "$scratch/allowed" "$python" -m venv "$scratch/venv"
hide "$scratch/allowed" "$scratch/venv/bin/python" -m pip install --quiet "$wheel[demo,test]"
say "the source install ($VENV) under the same hiding: must fail"
if hide "$scratch/allowed" "$VENV/bin/python" -c "import surgery._core" 2>"$scratch/source.err"; then
  fail "the source install imports with the system libraries hidden: the hiding hides nothing"
fi
grep -q "cannot open shared object file" "$scratch/source.err" || { cat "$scratch/source.err" >&2; fail "the source install failed otherwise"; }
grep -o "lib[^ :]*\.so[^ :]*: cannot open" "$scratch/source.err" >&2

say "caffe-surgery demo from the wheel"
(cd "$scratch" && hide "$scratch/allowed" "$scratch/venv/bin/caffe-surgery" demo) >"$scratch/demo.log" ||
  { tail -20 "$scratch/demo.log" >&2; fail "caffe-surgery demo"; }
tail -3 "$scratch/demo.log" >&2
say "mapped libraries after a forward; the dense map"
hide "$scratch/allowed" "$scratch/venv/bin/python" tests/wheel/installed_run.py "$scratch/wheel.npy" "$scratch/allowed"
"$VENV/bin/python" tests/wheel/installed_run.py "$scratch/source.npy"
cmp "$scratch/wheel.npy" "$scratch/source.npy" || fail "the wheel's dense map differs from the source build's"
say "pytest -m wheel against the installed wheel"
hide "$scratch/allowed" "$scratch/venv/bin/python" -m pytest -q -p no:cacheprovider -m "wheel and not slow" tests/python
say "wheel checked: $(basename "$wheel")"
