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
# The dashboard is installed next to the models, and the installed server serves it from there.
[ -f "$prefix/share/vigil/web/index.html" ] || { echo "install is missing share/vigil/web/index.html"; exit 1; }
served="$prefix/serve.out"
"$prefix/bin/vigil" serve --db "$prefix/serve.db" --port 0 >"$served" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do
  grep -q "dashboard\|without the registry server\|warning: the dashboard" "$served" && break
  sleep 0.1
done
kill "$serve_pid" 2>/dev/null || true
wait "$serve_pid" 2>/dev/null || true
if ! grep -q "without the registry server" "$served"; then
  grep -q "files from $prefix/share/vigil/web)" "$served" ||
    { echo "installed vigil serve did not find its dashboard: $(cat "$served")"; exit 1; }
fi
echo "install OK"
