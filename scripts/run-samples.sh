#!/usr/bin/env bash
# First command of the README: installs what is missing, builds, and reads the plates in the bundled
# sample photos; annotated copies go to ./out/samples.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
./build/apps/vigil/vigil read --annotate out/samples samples/
echo "vigil: annotated pictures are in $(pwd)/out/samples"
