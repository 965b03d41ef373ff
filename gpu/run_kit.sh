#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with .gpu-kit carried
# beside it (gpu/make_kit.sh builds it; gpu/README.md says how to send it):
# installs the package without a network, checks that every library is
# found, then runs the C++ tests, the Python tests and the GPU benchmark.
# Logs go to $OUT when it is set (the device tool brings them back).
#
#   bash gpu/run_kit.sh [KIT_DIR]
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
export PYTHONUNBUFFERED=1

say "device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
missing=$(ldd "$KIT"/bin/* "$site"/surgery/*.so | grep 'not found' | sort -u)
if [[ -n $missing ]]; then
  echo "libraries not found (carry them in gpu/make_kit.sh):"
  echo "$missing"
  exit 1
fi
"$PYTHON" -c 'import surgery; print("surgery.gpu_available():", surgery.gpu_available())'

status=0
say "C++ tests"
"$KIT/bin/surgery_tests" 2>&1 | tee "$LOGS/cpp_tests.log" | tail -n 30
[[ ${PIPESTATUS[0]} == 0 ]] || status=1
say "Python tests"
# --tb=short: no repr of locals in failure reports, -rfEs: name every failure.
"$PYTHON" -m pytest -q --tb=short -rfEs -p no:cacheprovider tests/python 2>&1 | tee "$LOGS/pytest.log" | tail -n 30
[[ ${PIPESTATUS[0]} == 0 ]] || status=1
say "GPU benchmark"
"$PYTHON" benchmarks/dense.py --gpu --plain-caffe "$KIT/bin/plain_caffe" 2>&1 | tee "$LOGS/bench_gpu.txt"
[[ ${PIPESTATUS[0]} == 0 ]] || status=1
say "exit status $status"
exit $status
