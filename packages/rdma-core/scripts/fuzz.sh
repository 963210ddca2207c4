#!/usr/bin/env bash
# Builds the libFuzzer targets of native/fuzz/ (ASan + UBSan) and runs each one.
#
#   scripts/fuzz.sh [seconds]        each target for `seconds` (default 30), growing a local corpus in
#                                    build-fuzz/corpus/<target> (seeded from native/fuzz/corpus/<target>)
#   scripts/fuzz.sh --ci [runs]      the bounded run of `pnpm test:fuzz`: each target from its checked-in
#                                    corpus alone, fixed seed, `runs` inputs (default 200000) or 4 s,
#                                    whichever ends first
#   FUZZ_TARGETS="shm_reader histogram" scripts/fuzz.sh 60    only some targets
#
# The checked-in corpus holds small seeds and every input that once found a bug (regress-*): each run
# replays them first. A crash, a sanitizer report, a broken invariant or an input running longer than 10 s
# fails the run; the input is kept in build-fuzz/artifacts/ and the command that replays it is printed.
# Without clang++ it skips (exit 0) and says why; clang without libFuzzer's runtime is an error.
set -uo pipefail
cd "$(dirname "$0")/.."

ci=0
if [ "${1:-}" = "--ci" ]; then
  ci=1
  runs=${2:-200000}
else
  seconds=${1:-30}
fi

CXX=${FUZZ_CXX:-clang++}
if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "fuzz: SKIPPED — $CXX not found. The fuzz targets need clang with libFuzzer (Debian: apt-get install clang libclang-rt-14-dev; scripts/setup.sh installs both)."
  exit 0
fi

OUT=${FUZZ_OUT:-build-fuzz}
mkdir -p "$OUT/artifacts"
FLAGS=(-std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  -Wall -Wextra -Werror)

# libFuzzer's runtime is a separate package on Debian (libclang-rt-<version>-dev): say so instead of a link error.
probe="$OUT/.probe"
if ! printf '%s\n' '#include <cstdint>' '#include <cstddef>' \
  'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' |
  "$CXX" -x c++ -fsanitize=fuzzer,address,undefined - -o "$probe" 2>"$probe.log"; then
  echo "fuzz: FAILED — $CXX cannot build a libFuzzer target (is libclang-rt-*-dev installed? scripts/setup.sh installs it):"
  sed 's/^/  /' "$probe.log" | tail -5
  exit 1
fi

targets=${FUZZ_TARGETS:-$(cd native/fuzz && ls fuzz_*.cc | sed 's/^fuzz_//; s/\.cc$//')}
failed=()
summary=()
for t in $targets; do
  src="native/fuzz/fuzz_$t.cc"
  bin="$OUT/fuzz_$t"
  [ -f "$src" ] || { echo "fuzz: no target $src"; failed+=("$t"); continue; }
  # Rebuild when the target or any native header is newer than the binary.
  if [ ! -x "$bin" ] || [ -n "$(find "$src" native/*.h native/fuzz/*.h -newer "$bin" 2>/dev/null | head -1)" ]; then
    echo "fuzz: building $t"
    if ! "$CXX" "${FLAGS[@]}" "$src" -o "$bin"; then
      failed+=("$t (build)")
      continue
    fi
  fi
  seeds="native/fuzz/corpus/$t"
  if [ $ci = 1 ]; then
    corpus=$(mktemp -d)
    limits=(-runs="$runs" -max_total_time=4 -seed=1)
  else
    corpus="$OUT/corpus/$t"
    limits=(-max_total_time="$seconds")
  fi
  mkdir -p "$corpus"
  [ -d "$seeds" ] && cp -n "$seeds"/* "$corpus"/ 2>/dev/null
  log="$OUT/$t.log"
  echo "fuzz: running $t"
  "$bin" "$corpus" "${limits[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/$t-" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  size=$(ls "$corpus" | wc -l)
  [ $ci = 1 ] && rm -rf "$corpus"
  if [ $rc -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $rc); the report:"
    grep -E 'ERROR|runtime error|invariant failed|SUMMARY|Test unit written|#[0-9]+ in ' "$log" | head -25 | sed 's/^/  /'
    art=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log" | tail -1)
    [ -n "$art" ] && echo "  replay: $bin $art"
    failed+=("$t")
    summary+=("$(printf '%-16s FAILED  runs %-9s exec/s %-7s' "$t" "${execs:-?}" "${rate:-?}")")
  else
    summary+=("$(printf '%-16s ok      runs %-9s exec/s %-7s corpus %s' "$t" "${execs:-?}" "${rate:-?}" "$size")")
  fi
done

echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: all targets passed"
