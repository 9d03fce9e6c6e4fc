#!/usr/bin/env bash
# Second command of the README (and CI): installs what is missing, builds, and runs every test:
# unit, CLI and model tests, the training smoke run, and -- when ../shared/data exists -- the
# accuracy checks on the held-out datasets (label shared-data; skipped cleanly without it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
cd build
ctest --output-on-failure --timeout 1500 -j1
