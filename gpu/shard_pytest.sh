#!/usr/bin/env bash
# The CPU half of the Python suite on the GPU machine, in KIT_SHARDS
# processes at once (test files dealt round robin; its 16 cores would
# otherwise sit idle while the lease runs out). Called by gpu/run_kit.sh,
# with its environment; each shard's log goes to LOGS/pytest_<k>.log.
#
#   bash gpu/shard_pytest.sh LOGS PYTHON PYTEST_ARGS...
set -uo pipefail
logs=$1
shift
shards=${KIT_SHARDS:-6}
mapfile -t files < <(ls tests/python/test_*.py | grep -v '/test_device')
pids=()
for ((s = 0; s < shards; s++)); do
  part=()
  for ((k = s; k < ${#files[@]}; k += shards)); do part+=("${files[k]}"); done
  "$@" "${part[@]}" > "$logs/pytest_$s.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
# Each shard's summary and its failures (-rfEs lines).
grep -h -E '^(FAILED|ERROR)|passed|failed' "$logs"/pytest_*.log
exit $status
