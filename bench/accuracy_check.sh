#!/usr/bin/env bash
# Accuracy regression check on the held-out parts of the shared datasets (CTest label shared-data).
# Usage: accuracy_check.sh VIGIL_BINARY DATA_DIR. Exits 77 (skipped) when DATA_DIR is absent.
# Floors live in bench/accuracy_floors.json: the shipped models' measured figures less a small margin.
set -euo pipefail
vigil=$1
data=$2
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -d "$data" ]; then
  echo "shared data not found at $data: skipping the accuracy check"
  exit 77
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$vigil" bench --json \
  "$data/openalpr-us:test" "$data/openalpr-br:test" "$data/plates-fr/test" \
  "$data/detect-ro-dashcam/valid" "$data/detect-es-uc3m/labels/val" >"$out"
/usr/bin/python3 - "$out" "$here/accuracy_floors.json" "$data" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))
floors = json.load(open(sys.argv[2]))
data = sys.argv[3]
failed = 0
for r in results:
    name = r["dataset"].replace(data + "/", "")
    f = floors.get(name, {})
    line = f"{name:28s} recall {r['detection_recall']:.3f} precision {r['detection_precision']:.3f} exact {r['exact']:.3f}"
    for key in ("detection_recall", "exact"):
        if key in f and r[key] < f[key]:
            line += f"  BELOW FLOOR {key} {f[key]}"
            failed += 1
    print(line)

sys.exit(1 if failed else 0)
PY
