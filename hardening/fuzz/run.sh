#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer, ASan and UBSan (docs/internals/testing.md, "Fuzzing").
#
#   hardening/fuzz/run.sh build                       libcaffe instrumented (cached) + targets
#   hardening/fuzz/run.sh ci [SECONDS] [TARGET...]    replay the corpus and crashes/, check the
#                                                     pending crashes still fail, then fuzz each
#                                                     target SECONDS (20); any new crash fails
#   hardening/fuzz/run.sh campaign [SECONDS] [TARGET...]
#                                                     the full campaign, SECONDS per target (900),
#                                                     FUZZ_PARALLEL targets at once (1); prints and
#                                                     writes build/fuzz/campaign/summary.txt
#   hardening/fuzz/run.sh merge [TARGET...]           minimize the campaign's corpus into corpus/
#   hardening/fuzz/run.sh triage TARGET FILE...       what each input triggers (its signature)
#   hardening/fuzz/run.sh keep TARGET FILE...         keep crash inputs: into crashes/TARGET/ and
#                                                     pending.txt with their signatures
#
# Targets: prototxt, caffemodel, surgery, forward (targets/fuzz_*.cpp) and, in
# Python under atheris, mean, labels, record, image (python/fuzz_*.py: the
# readers of the files a user names; SURGERY_FUZZ_PYTHON is their Python, by
# default .venv's, with the package and the "fuzz" extra installed).
# crashes/TARGET/ holds every crash input ever found; pending.txt lists those
# not fixed yet (target, file, signature): CI expects them to fail still and
# tolerates a rediscovery of their signatures. When a fix lands, delete its
# line; CI then replays the input as a regression test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
here=hardening/fuzz
build=${SURGERY_FUZZ_BUILD:-build/fuzz$([[ ${SURGERY_FUZZ_CAFFE:-} == plain ]] && echo -plain || true)}
CPP_TARGETS=(prototxt caffemodel surgery forward)
PY_TARGETS=(mean labels record image)
ALL_TARGETS=("${CPP_TARGETS[@]}" "${PY_TARGETS[@]}")
if [[ -z ${SURGERY_FUZZ_PYTHON:-} ]]; then
  SURGERY_FUZZ_PYTHON=$([[ -x .venv/bin/python ]] && echo "$PWD/.venv/bin/python" || command -v python3)
fi
# OSS-Fuzz's UBSan checks (less vptr and function, which need every library
# built with RTTI checks); the same for libcaffe, the core and the targets.
SANITIZERS=address,array-bounds,bool,builtin,enum,float-divide-by-zero,integer-divide-by-zero,null,object-size,return,returns-nonnull-attribute,shift,signed-integer-overflow,unreachable,vla-bound
# The targets set surgery's memory limit to 256 MiB; one allocation past
# 320 MiB means memory was taken before the limit said yes: a finding.
# ASan's own overhead needs the generous RSS limit.
LIMITS=(-rss_limit_mb=2048 -malloc_limit_mb=320 -timeout=25)
export FUZZ_LIMITS="${LIMITS[*]}"
# Leaks are the ASan ctest build's concern (tests/cpp/lsan.supp); libcaffe's
# one-time allocations would be reported on every input here.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# One thread: OpenBLAS threads only slow a fuzzer down on a shared machine.
export OPENBLAS_NUM_THREADS=1
say() { echo "== fuzz: $*" >&2; }

# libcaffe built by clang with the same instrumentation, in a cache of its
# own (these flags must not reach the shared libcaffe), from a copy of the
# recipe plus caffe-clang.patch (clang refuses one line gcc accepts); prints
# its prefix.
instrumented_caffe() {
  local flags="-g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,$SANITIZERS -fno-sanitize-recover=all"
  local cache=${CAFFE_SURGERY_FUZZ_CACHE:-$HOME/.cache/caffe-surgery-fuzz}
  mkdir -p "$cache"
  if [[ -f $cache/flags && $(cat "$cache/flags") != "$flags" ]]; then
    say "$cache was built with other flags; remove it to rebuild"; exit 1
  fi
  echo "$flags" > "$cache/flags"
  local recipe="$build/caffe-recipe"
  rm -rf "$recipe"
  mkdir -p "$build"
  cp -r third_party/caffe "$recipe"
  cp "$here/caffe-clang.patch" "$recipe/patches/9000-fuzz-clang-explicit-instantiation.patch"
  # The recipe applies the patches its series lists, and refuses one it
  # does not (third_party/caffe/patches/README.md).
  echo "9000-fuzz-clang-explicit-instantiation.patch" >> "$recipe/patches/series"
  say "libcaffe instrumented for fuzzing (once per recipe; 15-30 minutes on 2 cores)"
  CAFFE_SURGERY_CACHE=$cache CC=clang CXX=clang++ CFLAGS="$flags" CXXFLAGS="$flags" \
    CAFFE_SURGERY_JOBS=${CAFFE_SURGERY_JOBS:-2} bash "$recipe/build.sh"
}

# Builds the C++ targets among $@ (all when none is named) and writes the
# Python ones' launchers.
build() {
  local wanted=" ${*:-${ALL_TARGETS[*]}} " target cpp=no python=no
  for target in "${CPP_TARGETS[@]}"; do [[ $wanted != *" $target "* ]] || cpp=yes; done
  for target in "${PY_TARGETS[@]}"; do [[ $wanted != *" $target "* ]] || python=yes; done
  if [[ $python == yes ]]; then python_launchers; fi
  if [[ $cpp == yes ]]; then build_cpp; fi
}

is_python() { [[ " ${PY_TARGETS[*]} " == *" $1 "* ]]; }

# Each Python target runs through a launcher, so the steps below (replay,
# fuzz, merge, triage) treat it as they treat a C++ binary: the Python with
# ASan's runtime preloaded (atheris's asan_with_fuzzer.so, which holds
# libFuzzer too). Only that runtime is added: it checks every malloc'd
# block through its allocator and the libc functions it intercepts, and
# gives libFuzzer's -malloc_limit_mb its hook; CPython, numpy, Pillow and the
# package's _core are not compiled with the sanitizers, so their own loads
# and stores go unchecked, and UBSan, whose checks are compiled in, has
# nothing to check there. Coverage is that of the Python code (harness.py).
python_launchers() {
  local runtime target
  runtime=$("$SURGERY_FUZZ_PYTHON" -c 'import atheris, os; print(os.path.join(atheris.path(), "asan_with_fuzzer.so"))') || {
    say "atheris is missing for $SURGERY_FUZZ_PYTHON (pip install '.[fuzz]')"; return 1; }
  mkdir -p "$build/python"
  for target in "${PY_TARGETS[@]}"; do
    cat > "$build/python/fuzz_$target" <<LAUNCHER
#!/bin/sh
# Written by hardening/fuzz/run.sh: the Python target $target under ASan's runtime.
LD_PRELOAD="\${SURGERY_FUZZ_PRELOAD-$runtime}\${LD_PRELOAD:+:\$LD_PRELOAD}" exec "$SURGERY_FUZZ_PYTHON" "$PWD/$here/python/fuzz_$target.py" "\$@"
LAUNCHER
    chmod +x "$build/python/fuzz_$target"
  done
}

# SURGERY_FUZZ_CAFFE=plain links the shared, uninstrumented libcaffe (built
# by gcc) instead: no long build, but coverage and the sanitizers then stop
# at Caffe's door (its crashes still show as deadly signals).
build_cpp() {
  local caffe_args=() prefix
  if [[ ${SURGERY_FUZZ_CAFFE:-instrumented} != plain ]]; then
    prefix=$(instrumented_caffe)
    # Caffe_DIR too: the build folder's cache keeps the one an earlier
    # recipe's libcaffe gave, and CMAKE_PREFIX_PATH alone does not replace it
    # (the targets then compiled against the old headers).
    caffe_args=(-DCMAKE_PREFIX_PATH="$prefix" -DCaffe_DIR="$prefix/lib/cmake/Caffe")
  fi
  say "targets in $build"
  cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSURGERY_BUILD_FUZZERS=ON \
    -DSURGERY_FUZZ_SANITIZERS="$SANITIZERS" "${caffe_args[@]}" >/dev/null
  cmake --build "$build" -j "${CAFFE_SURGERY_JOBS:-2}" >/dev/null
}

binary() {
  if is_python "$1"; then echo "$build/python/fuzz_$1"; else echo "$build/$here/fuzz_$1"; fi
}

# The files of crashes/TARGET listed in pending.txt (not fixed yet).
pending_files() { awk -v t="$1" '$1 == t { print $2 }' "$here/pending.txt"; }
pending_signatures() { awk -F'\t' -v t="$1" '$1 == t { print $3 }' "$here/pending.txt"; }

# The caffemodel target's seeds are written by make_seeds.py into the build
# folder (binary model files are not kept in the repository); other targets
# have none. Prints the target's seed folder.
seeds() {
  local dir="$build/seeds/$1"
  if [[ ! -d $dir ]]; then
    mkdir -p "$dir"
    [[ $1 != caffemodel ]] || python3 "$here/make_seeds.py" "$dir" >/dev/null
  fi
  echo "$dir"
}

# Replays the corpus, the generated seeds and the fixed crash inputs; each must run clean.
replay() {
  local target=$1 files=() f
  mapfile -t pending < <(pending_files "$target")
  for f in "$here/corpus/$target"/* "$(seeds "$target")"/* "$here/crashes/$target"/*; do
    [[ -f $f ]] || continue
    [[ " ${pending[*]} " == *" $(basename "$f") "* ]] && continue
    files+=("$f")
  done
  say "$target: replaying ${#files[@]} inputs"
  "$(binary "$target")" "${LIMITS[@]}" -runs=1 "${files[@]}" >/dev/null 2>"$build/replay-$target.log" || {
    tail -40 "$build/replay-$target.log" >&2; say "$target: a kept input fails"; return 1; }
  skipped "$build/replay-$target.log"
}

# A Python target whose reader this tree lacks says so and runs nothing.
skipped() { grep -h "^fuzz target .* skipped" "$1" >&2 || true; }

# Each pending crash must still fail; one that passes was fixed: say so.
check_pending() {
  local target=$1 status=0 name verdict
  while read -r name; do
    [[ -n $name ]] || continue
    verdict=$(triage "$target" "$here/crashes/$target/$name" | cut -f2)
    if [[ $verdict == ok ]]; then
      say "$target: crashes/$target/$name runs clean now: delete its line in pending.txt"
      status=1
    fi
  done < <(pending_files "$target")
  return $status
}

triage() {
  local target=$1; shift
  python3 "$here/triage.py" "$(binary "$target")" "$@"
}

# Fuzzes one target for $2 seconds in fork mode (crashes, OOMs and timeouts
# are kept as artifacts and the run goes on) into $3; prints its stats line.
# The corpus grows from run to run; the artifacts are this run's alone (an
# earlier campaign's were counted and triaged again as if new; `keep` is how
# a finding is kept).
fuzz() {
  local target=$1 seconds=$2 out=$3
  rm -rf "$out/artifacts"
  mkdir -p "$out/corpus" "$out/artifacts"
  # libFuzzer refuses a corpus folder that does not exist: only the kept ones.
  local kept=("$(seeds "$target")")
  [[ -d $here/corpus/$target ]] && kept+=("$here/corpus/$target")
  nice -n 10 "$(binary "$target")" "${LIMITS[@]}" -fork=1 -ignore_crashes=1 -ignore_ooms=1 \
    -ignore_timeouts=1 -max_total_time="$seconds" -artifact_prefix="$out/artifacts/" \
    "$out/corpus" "${kept[@]}" >"$out/log" 2>&1 || true
  skipped "$out/log"
  local stats
  stats=$(grep -E '^#[0-9]+: cov: ' "$out/log" | tail -1 || true)  # none: a skipped target
  # "#N: cov: C ft: F corp: K exec/s E oom/timeout/crash: a/b/c time: Ts ..."
  awk -v t="$target" -v artifacts="$(findings "$out" | wc -l)" \
    '{ sub(/:$/, "", $1); sub(/#/, "", $1);
       printf "%-11s %10s %7s %6s %7s %8s %10s %9s\n", t, $1, $9, $3, $5, $7, $11, artifacts }' \
    <<<"${stats:-#0: cov: 0 ft: 0 corp: 0 exec/s 0 oom/timeout/crash: 0/0/0}"
}

header() {
  printf "%-11s %10s %7s %6s %7s %8s %10s %9s\n" target execs exec/s cov ft corpus \
    oom/to/crash artifacts
}

# The artifacts that are findings (libFuzzer also keeps slow-unit-* files).
findings() {
  find "$1/artifacts" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | sort
}

# Signatures of the artifacts of a run, one line each, with a count.
signatures() {
  local target=$1 out=$2
  findings "$out" | while read -r f; do triage "$target" "$f"; done |
    awk -F'\t' '{ n[$2]++; first[$2] = first[$2] ? first[$2] : $1 }
                END { for (s in n) printf "  %3d x %s  (e.g. %s)\n", n[s], s, first[s] }'
}

ci() {
  local seconds=${1:-20}; shift || true
  local targets=("$@") status=0 target out new
  ((${#targets[@]})) || targets=("${ALL_TARGETS[@]}")
  build "${targets[@]}"
  for target in "${targets[@]}"; do
    replay "$target" || status=1
    check_pending "$target" || status=1
    out=$(mktemp -d "$build/ci-$target.XXXXXX")
    say "$target: fuzzing ${seconds} s"
    header; fuzz "$target" "$seconds" "$out"
    # A crash whose signature is not a pending one is new: it fails CI.
    new=$(findings "$out" | while read -r f; do triage "$target" "$f"; done |
          awk -F'\t' 'NR == FNR { known[$0] = 1; next } $2 != "ok" && !known[$2]' \
            <(pending_signatures "$target") -)
    if [[ -n $new ]]; then
      say "$target: new crash (keep the input in crashes/$target/, list it in pending.txt):"
      echo "$new" >&2
      status=1
    fi
    rm -rf "$out"
  done
  return $status
}

campaign() {
  local seconds=${1:-900}; shift || true
  local targets=("$@") parallel=${FUZZ_PARALLEL:-1} root="$build/campaign" target
  ((${#targets[@]})) || targets=("${ALL_TARGETS[@]}")
  build "${targets[@]}"
  mkdir -p "$root"
  for target in "${targets[@]}"; do
    while (($(jobs -rp | wc -l) >= parallel)); do wait -n; done
    say "$target: fuzzing $seconds s into $root/$target"
    fuzz "$target" "$seconds" "$root/$target" > "$root/$target.stats" &
  done
  wait
  {
    echo "fuzz campaign: $seconds s per target, $(date -u '+%Y-%m-%d %H:%M UTC')"
    header
    for target in "${targets[@]}"; do cat "$root/$target.stats"; done
    for target in "${targets[@]}"; do
      echo "$target: crashes by signature"
      signatures "$target" "$root/$target"
    done
  } | tee "$root/summary.txt"
}

merge() {
  local targets=("$@") target fresh
  ((${#targets[@]})) || targets=("${ALL_TARGETS[@]}")
  for target in "${targets[@]}"; do
    fresh=$(mktemp -d "$build/merge-$target.XXXXXX")
    "$(binary "$target")" "${LIMITS[@]}" -merge=1 "$fresh" "$here/corpus/$target" \
      "$build/campaign/$target/corpus" 2>"$build/merge-$target.log"
    mkdir -p "$here/corpus/$target"
    rm -f "$here/corpus/$target"/*
    mv "$fresh"/* "$here/corpus/$target/"
    rmdir "$fresh"
    say "$target: $(ls "$here/corpus/$target" | wc -l) inputs, $(du -sh "$here/corpus/$target" | cut -f1)"
  done
}

keep() {
  local target=$1 file name verdict; shift
  mkdir -p "$here/crashes/$target"
  for file in "$@"; do
    name=$(sha1sum "$file" | cut -c1-16)
    cp "$file" "$here/crashes/$target/$name"
    verdict=$(triage "$target" "$here/crashes/$target/$name" | cut -f2)
    if [[ $verdict == ok ]]; then
      say "$target: $file runs clean (a flaky crash?): kept as a regression input only"
    elif ! grep -q "^$target	$name	" "$here/pending.txt"; then
      printf '%s\t%s\t%s\n' "$target" "$name" "$verdict" >> "$here/pending.txt"
    fi
    echo "$target/$name	$verdict"
  done
}

case "${1:-}" in
  build) build ;;
  ci) shift; ci "$@" ;;
  campaign) shift; campaign "$@" ;;
  merge) shift; merge "$@" ;;
  triage) shift; triage "$@" ;;
  keep) shift; keep "$@" ;;
  *) sed -n '2,24p' "$0" >&2; exit 2 ;;
esac
