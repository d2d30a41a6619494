#!/usr/bin/env bash
# First run on a fresh Debian 12 machine: install dependencies, build, and
# start yjtd on its embedded default (SQLite under ./data, plain HTTP on
# 127.0.0.1:8080) with the demo data set. The demo passwords are printed at
# first start and kept in ./data/demo-accounts.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"
exec build/yjtd --demo --data-dir ./data --listen 127.0.0.1:8080 "$@"
