#!/usr/bin/env bash
# `cmake --install` puts the binary, models and formats where the binary finds them, from any directory.
set -euo pipefail
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/vigil share/vigil/models/detector.onnx share/vigil/models/detector.json share/vigil/models/reader.onnx \
         share/vigil/models/reader.json share/vigil/plate_formats.json; do
  [ -f "$prefix/$f" ] || { echo "install is missing $f"; exit 1; }
done
cd /
log=$("$prefix/bin/vigil" -v read --json "$prefix/share/vigil/samples/ro-dashcam-close.jpg" 2>&1 >/dev/null)
echo "$log" | grep -q "models from $prefix/share/vigil/models" || { echo "installed binary did not use its own models: $log"; exit 1; }
"$prefix/bin/vigil" read --json "$prefix/share/vigil/samples/ro-dashcam-close.jpg" | grep -q '"error":null'
echo "install OK"
