#!/usr/bin/env bash
# Run saferl's whole test suite from a fresh machine: install what is missing, build, then
#   1. the libFuzzer targets, briefly (clang, address + undefined sanitizers),
#   2. every test under address + undefined sanitizers,
#   3. every test on the normal build (GPU tests skip, saying so, where no GPU is usable).
# Environment: SRL_FUZZ_SECONDS (default 20 per target), SRL_SKIP_SANITIZE=1, SRL_SKIP_FUZZ=1.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

SRL_CMAKE_ARGS="-DSRL_WERROR=ON ${SRL_CMAKE_ARGS:-}" ./scripts/setup.sh

if [ "${SRL_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzz targets (${SRL_FUZZ_SECONDS:-20} s each)"
  CC=clang cmake -S . -B build-fuzz -G Ninja -DSRL_FUZZ=ON -DSRL_WERROR=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-fuzz --parallel "$jobs"
  for fuzzer in build-fuzz/bin/fuzz_*; do
    name=$(basename "$fuzzer")
    corpus="tests/fuzz/corpus_${name#fuzz_}"
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
    echo "-- $name"
    "$fuzzer" -max_total_time="${SRL_FUZZ_SECONDS:-20}" -rss_limit_mb=2048 -print_final_stats=0 \
      -artifact_prefix=build-fuzz/ "$work" 2>&1 | tail -n 2
    rm -rf "$work"
  done
fi

if [ "${SRL_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== tests under address and undefined-behaviour sanitizers"
  cmake -S . -B build-sanitize -G Ninja -DSRL_SANITIZE=ON -DSRL_CUDA=OFF -DSRL_NATIVE=OFF \
    -DSRL_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-sanitize --parallel "$jobs"
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-sanitize --output-on-failure -j "$jobs"
fi

echo "== tests"
ctest --test-dir build --output-on-failure -j "$jobs"
