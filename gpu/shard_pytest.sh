#!/usr/bin/env bash
# The CPU half of the Python suite on the GPU machine, in KIT_SHARDS
# processes at once (test files dealt round robin; its 16 cores would
# otherwise sit idle while the lease runs out). Called by gpu/run_kit.sh,
# with its environment. Each shard gets its share of the cores for BLAS and
# libcaffe's loops: 8 shards each on all 16 cores ran 128 threads on 16,
# and the digit-training fixture and the fuzz campaign passed pytest's
# 120 s limit. Prints each shard's summary, and the whole log of a shard
# that failed.
#
#   bash gpu/shard_pytest.sh PYTHON PYTEST_ARGS...
set -uo pipefail
shards=${KIT_SHARDS:-6}
threads=$(( $(nproc) / shards > 0 ? $(nproc) / shards : 1 ))
export SURGERY_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
mapfile -t files < <(ls tests/python/test_*.py | grep -v '/test_device')
pids=()
for ((s = 0; s < shards; s++)); do
  part=()
  for ((k = s; k < ${#files[@]}; k += shards)); do part+=("${files[k]}"); done
  "$@" "${part[@]}" > "$logs/$s.log" 2>&1 &
  pids+=($!)
done
status=0
for s in "${!pids[@]}"; do
  if wait "${pids[s]}"; then
    tail -n 1 "$logs/$s.log"
  else
    status=1
    echo "---- shard $s failed:"
    cat "$logs/$s.log"
  fi
done
exit $status
