#!/usr/bin/env bash
# Smoke test of the training recipes (CTest "training_smoke"): trains the models for a few steps on a
# generated toy dataset, exports ONNX + sidecars, and checks that `vigil read` loads and runs them.
# Usage: training/smoke_test.sh VIGIL_BINARY
set -euo pipefail
vigil=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
$py "$here/make_toy_dataset.py" "$tmp/toy" --n 12
$py "$here/train_reader.py" --smoke --real "$tmp/toy/plates" --eval "$tmp/toy/plates:all" \
    --backgrounds "$tmp/toy/negatives" --out "$tmp/models/reader.onnx" --run-dir "$tmp/runs/reader"
$py "$here/train_detector.py" --smoke --train-set "$tmp/toy/plates" --test-set "$tmp/toy/plates" \
    --negatives "$tmp/toy/negatives" --out "$tmp/models/detector.onnx" --run-dir "$tmp/runs/detector"
# The GPU-machine recipe: train from packs in worker processes, checkpoints only, export here.
$py "$here/train_reader.py" --real "$tmp/toy/plates" --eval "$tmp/toy/plates:all" \
    --backgrounds "$tmp/toy/negatives" --save-pack "$tmp/reader.pack"
$py "$here/train_reader.py" --smoke --from-pack "$tmp/reader.pack" --workers 1 --no-export --recompose-share 0.5 \
    --init "$tmp/runs/reader/last.pt" --run-dir "$tmp/runs/reader-pack"
$py "$here/train_reader.py" --export-only --from-pack "$tmp/reader.pack" --run-dir "$tmp/runs/reader-pack" \
    --out "$tmp/models-pack/reader.onnx"
$py "$here/train_detector.py" --train-set "$tmp/toy/plates" --negatives "$tmp/toy/negatives" \
    --save-pack "$tmp/detector.pack" --pack-long-side 320
$py "$here/train_detector.py" --smoke --from-pack "$tmp/detector.pack" --workers 1 --no-eval \
    --init "$tmp/runs/detector/smoke/last.pt" --run-dir "$tmp/runs/detector-pack" --out "$tmp/unused.onnx"
cp "$tmp/models/detector.json" "$tmp/models-pack/detector.json"
$py "$here/train_detector.py" --eval-only --test-set "$tmp/toy/plates" --no-hires \
    --export-checkpoint "$tmp/runs/detector-pack/smoke/last.pt" --out "$tmp/models-pack/detector.onnx" \
    --run-dir "$tmp/runs/detector-pack"
$py - "$tmp/models-pack" <<'PY'
import json, sys
for name in ("detector", "reader"):
    t = json.load(open(f"{sys.argv[1]}/{name}.json"))["training"]
    assert t["fine_tune"]["from"] == "last.pt" and t["fine_tune"]["samples"] > 0, (name, t)
    assert t.get("samples_seen", t.get("samples")) > t["fine_tune"]["samples"], (name, t)  # base + fine-tune
PY
"$vigil" read --json --models "$tmp/models-pack" --formats "$here/../data/plate_formats.json" \
    "$tmp/toy/plates/toy000.jpg" | grep -q '"error":null'

# Fine-tunes of the exported models themselves (what a user has: no checkpoints), lineage in the sidecars.
$py "$here/train_reader.py" --smoke --real "$tmp/toy/plates" --eval "$tmp/toy/plates:all" \
    --backgrounds "$tmp/toy/negatives" --init "$tmp/models/reader.onnx" --out "$tmp/models-onnx/reader.onnx" \
    --run-dir "$tmp/runs/reader-onnx"
$py "$here/train_detector.py" --smoke --train-set "$tmp/toy/plates" --test-set "$tmp/toy/plates" \
    --negatives "$tmp/toy/negatives" --init "$tmp/models/detector.onnx" --out "$tmp/models-onnx/detector.onnx" \
    --run-dir "$tmp/runs/detector-onnx"
$py - "$tmp/models" "$tmp/models-onnx" <<'PY'
import json, sys
for name in ("detector", "reader"):
    base = json.load(open(f"{sys.argv[1]}/{name}.json"))["training"]
    t = json.load(open(f"{sys.argv[2]}/{name}.json"))["training"]
    assert t["fine_tune"]["from"] == f"{name}.onnx" and t["fine_tune"]["samples"] > 0, (name, t)
    seen = "samples_seen" if name == "detector" else "samples"
    assert t[seen] == base[seen] + t["fine_tune"]["samples"], (name, base, t)
PY
"$vigil" read --json --models "$tmp/models-onnx" --formats "$here/../data/plate_formats.json" \
    "$tmp/toy/plates/toy000.jpg" | grep -q '"error":null'

# The score-head refit on the smoke detector: a few views, one epoch, checked against cv2.dnn, loaded by vigil.
$py "$here/refit_score_head.py" --train-set "$tmp/toy/plates" --negatives "$tmp/toy/negatives" \
    --detector "$tmp/models/detector.onnx" --out "$tmp/models-head/detector.onnx" --random-views 8 --synthetic-views 4 --epochs 1
cp "$tmp/models/reader.onnx" "$tmp/models/reader.json" "$tmp/models-head/"
"$vigil" read --json --models "$tmp/models-head" --formats "$here/../data/plate_formats.json" \
    "$tmp/toy/plates/toy000.jpg" | grep -q '"error":null'

# The country classifier on rendered plates, loaded beside the smoke models: every read names a country.
$py "$here/train_country.py" --smoke --out "$tmp/models/country.onnx"
for f in reader.onnx reader.json detector.onnx detector.json country.onnx country.json; do
  [ -s "$tmp/models/$f" ] || { echo "smoke training did not write $f"; exit 1; }
done
"$vigil" read --json --models "$tmp/models" --formats "$here/../data/plate_formats.json" \
    "$tmp/toy/plates/toy000.jpg" | grep -q '"error":null'
echo "training smoke OK"
