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
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# European sets with the default region (eu); the US and Brazilian photos as a camera there is set up.
"$vigil" bench --json \
  "$data/plates-fr/test" "$data/detect-ro-dashcam/valid" "$data/detect-es-uc3m/labels/val" \
  "$data/plates-eu-crops:dev" "$data/detect-ro-dashcam/plates-valid.csv" >"$work/eu.json"
"$vigil" bench --json --region americas "$data/openalpr-us:test" "$data/openalpr-br:test" >"$work/americas.json"
# The Spanish plates at least 40 px wide (the smallest size the detector is meant to find).
"$vigil" bench --json --min-plate-width 40 "$data/detect-es-uc3m/labels/val" >"$work/es40.json"
# The held-out US, BR and FR photos shrunk so their plates are 40-80 px wide, in 4000x3000 canvases.
/usr/bin/python3 "$here/../training/make_small_plate_set.py" "$data/openalpr-us:test" "$data/openalpr-br:test" \
  "$data/plates-fr/test" --negatives "$data/negatives" --out "$work/small-plates"
"$vigil" bench --json --region all "$work/small-plates" >"$work/small.json"
# Synthetic two-line (square, motorcycle) plates in real places: no real labelled set has them.
/usr/bin/python3 "$here/../training/make_synthetic_set.py" --two-line --negatives "$data/negatives" \
  --fonts "$data/fonts" --out "$work/two-line"
"$vigil" bench --json --region all "$work/two-line" >"$work/two-line.json"
# The held-out US and BR photos turned by +-30 degrees about their plates (plates tilted in the image).
for set in openalpr-us openalpr-br; do
  /usr/bin/python3 "$here/../training/make_tilted_set.py" "$data/$set:test" --angle 30 --out "$work/$set-30"
done
"$vigil" bench --json --region americas "$work/openalpr-us-30" "$work/openalpr-br-30" >"$work/tilted.json"
/usr/bin/python3 - "$work" "$here/accuracy_floors.json" "$data" <<'PY'
import json, os, sys
work, floors, data = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
results = json.load(open(os.path.join(work, "eu.json"))) + json.load(open(os.path.join(work, "americas.json")))
for r in json.load(open(os.path.join(work, "es40.json"))):
    r["dataset"] += " >=40px"
    results.append(r)
for r in json.load(open(os.path.join(work, "small.json"))):
    r["dataset"] = "small plates in 4000x3000"
    results.append(r)
for r in json.load(open(os.path.join(work, "two-line.json"))):
    r["dataset"] = "synthetic two-line plates"
    results.append(r)
for r, name in zip(json.load(open(os.path.join(work, "tilted.json"))), ("openalpr-us:test", "openalpr-br:test")):
    r["dataset"] = name + " turned 30 degrees"
    results.append(r)
failed = 0
for r in results:
    name = r["dataset"].replace(data + "/", "")
    f = floors.get(name, {})
    line = f"{name:36s} recall {r['detection_recall']:.3f} precision {r['detection_precision']:.3f} exact {r['exact']:.3f}"
    if r.get("two_line_plates"):
        line += f" two-line {r['two_line_exact']:.3f}"
    if r.get("country_labelled"):
        line += f" country {r['country_right']:.3f}"
    for key in ("detection_recall", "detection_precision", "exact", "two_line_exact", "country_right"):
        if key in f and r[key] < f[key]:
            line += f"  BELOW FLOOR {key} {f[key]}"
            failed += 1
    print(line)

sys.exit(1 if failed else 0)
PY
