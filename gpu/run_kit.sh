#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with .gpu-kit carried
# beside it (gpu/make_kit.sh builds it; gpu/README.md says how to send it):
# installs the package without a network, checks that every library is
# found, then runs, each step bounded by its own timeout so that a hang
# cannot spend the whole GPU lease: the C++ tests, the Python tests that
# use the GPU (tests/python/test_device*.py: surgery, rarefied and tiled
# forwards in GPU mode), the GPU benchmark (its GPU column alone), the GPU
# profile, and the rest of the Python suite (in parallel shards). Logs and
# steps.txt (each step's exit status and seconds) go to $OUT when it is set
# (the device tool brings them back).
#
#   bash gpu/run_kit.sh [KIT_DIR]
#
# Step limits in seconds (environment): KIT_CPP_S (90), KIT_GPU_TESTS_S
# (150), KIT_BENCH_S (90), KIT_PROFILE_S (60), KIT_REST_S (240); 0 skips
# a step. KIT_SHARDS (6): pytest processes for the rest.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KIT=$(realpath -m "${1:-$ROOT/.gpu-kit}")
PYTHON=${CAFFE_SURGERY_KIT_PYTHON:-python3}
LOGS=${OUT:-$KIT/logs}
mkdir -p "$LOGS"
cd "$ROOT"

say() { echo "== $*"; }

site=$(mktemp -d)
"$PYTHON" -m pip install --quiet --no-index --no-deps --target "$site" "$KIT"/wheels/*.whl || exit 1
# The C++ binaries use the libcaffe inside the installed package. pip put
# the console script in $site/bin, which the CLI tests find on PATH.
export PYTHONPATH=$site
export PATH=$site/bin:$PATH
export LD_LIBRARY_PATH=$KIT/lib:$site/surgery${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export SURGERY_FIXTURES=$KIT/fixtures
# The kit carries no stock (unpatched) libcaffe; ./run.sh test measures ours against it.
export SURGERY_STOCK_CAFFE=none
export PYTHONUNBUFFERED=1

say "device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "profilers: $(command -v nsys ncu | tr '\n' ' ')"
missing=$(ldd "$KIT"/bin/* "$site"/surgery/*.so | grep 'not found' | sort -u)
if [[ -n $missing ]]; then
  echo "libraries not found (carry them in gpu/make_kit.sh):"
  echo "$missing"
  exit 1
fi
"$PYTHON" -c 'import surgery; print("surgery.gpu_available():", surgery.gpu_available())'

status=0
# step NAME SECONDS LOG COMMAND...: runs COMMAND under `timeout`, its output
# in $LOGS/LOG (the last lines shown); a failure or timeout fails the run,
# and the next step runs all the same. A limit of 0 skips the step.
step() {
  local name=$1 limit=$2 log=$3 start=$SECONDS rc
  shift 3
  if [[ $limit == 0 ]]; then echo "== $name: skipped (limit 0)"; return; fi
  say "$name (at most ${limit} s)"
  timeout -k 10 "$limit" "$@" 2>&1 | tee "$LOGS/$log" | tail -n 30
  rc=${PIPESTATUS[0]}
  if [[ $rc == 124 || $rc == 137 ]]; then
    echo "TIMED OUT after $limit s: $name" | tee -a "$LOGS/$log"
  fi
  [[ $rc == 0 ]] || status=1
  printf '%-16s exit %3s  %4d s\n' "$log" "$rc" $((SECONDS - start)) >> "$LOGS/steps.txt"
}
: > "$LOGS/steps.txt"
# --tb=short: no repr of locals in failure reports, -rfEs: name every failure.
pytest=("$PYTHON" -m pytest -q --tb=short -rfEs -p no:cacheprovider)
# Where pytest-timeout is installed, one stuck test fails alone, not its step.
if "$PYTHON" -c 'import pytest_timeout' 2>/dev/null; then pytest+=(--timeout=120); fi
gpu_tests=(tests/python/test_device*.py)

step "C++ tests" "${KIT_CPP_S:-90}" cpp_tests.log "$KIT/bin/surgery_tests"
# These put themselves in GPU mode where a case is about the GPU.
step "Python tests that use the GPU" "${KIT_GPU_TESTS_S:-150}" pytest_gpu.log \
  "${pytest[@]}" "${gpu_tests[@]}"
step "GPU benchmark" "${KIT_BENCH_S:-90}" bench_gpu.txt \
  "$PYTHON" benchmarks/dense.py --gpu-only --repeat 15 --plain-caffe "$KIT/bin/plain_caffe"
step "GPU profile" "${KIT_PROFILE_S:-60}" profile_gpu.txt \
  "$PYTHON" benchmarks/profile.py --repeat 15 --gpu "$KIT/bin/gpu_profile" \
  $(command -v ncu >/dev/null && echo --kernels "$KIT/bin/plain_caffe")
# Last: CPU tests on that machine's Python, in shards run at once, in
# whatever lease is left (the logs are written as they go, so a cut-off run
# still reports what passed).
step "the rest of the Python tests" "${KIT_REST_S:-240}" pytest.log \
  bash gpu/shard_pytest.sh "${pytest[@]}"
cat "$LOGS/steps.txt"
say "exit status $status"
exit $status
