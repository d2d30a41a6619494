#!/usr/bin/env bash
# The whole test suite, as CI runs it: install dependencies, then build and
# run every test (cmocka unit tests and integration tests against the real
# yjtd) twice: a normal build, and an AddressSanitizer + UndefinedBehavior-
# Sanitizer build with leak checking, and finally a short run of each fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh

jobs=$(nproc)
echo "== release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== ASan + UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DYJT_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j"$jobs")

if [ -x tools/fuzz.sh ]; then
  echo "== fuzzing"
  tools/fuzz.sh 30
fi
