#!/usr/bin/env bash
# The whole test suite, as CI runs it: install dependencies (Debian packages,
# and the npm packages of the browser tests), then build and run every test
# (cmocka unit tests and integration tests against the real yjtd) twice: a
# normal build, and an AddressSanitizer + UndefinedBehaviorSanitizer build
# with leak checking, and finally a short run of each fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh

# playwright-core for the browser call tests (tests/browser): installed from
# the lock file, again only when the lock file changed. Playwright never
# downloads a browser here: the tests drive Debian's chromium.
lock=tests/browser/package-lock.json
stamp=tests/browser/node_modules/.installed-package-lock.json
if ! cmp -s "$lock" "$stamp"; then
  echo "== npm ci (tests/browser)"
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  cp "$lock" "$stamp"
fi

jobs=$(nproc)
echo "== release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== ASan + UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DYJT_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
# Leak reports unwind with frame pointers (the build keeps them): full
# (slow) unwinding on every malloc made the suite many times slower; add
# fast_unwind_on_malloc=0 by hand for deeper stacks in a leak hunt.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j"$jobs")

if [ -x tools/fuzz.sh ]; then
  echo "== fuzzing"
  tools/fuzz.sh 10
fi
