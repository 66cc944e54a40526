#!/usr/bin/env bash
# PETA on ML-CUFED (arXiv 2109.12499), for a GPU machine with the dataset on disk. Not run by CI.
#
#   ML_CUFED=/data/ML_CUFED tools/album/ml_cufed.sh
#
# Expects the ML-CUFED layout of miil.album.data.read_cufed:
#   $ML_CUFED/images/<album_id>/*.jpg, $ML_CUFED/event_type.json, $ML_CUFED/image_importance.json,
#   $ML_CUFED/train_split.txt and $ML_CUFED/test_split.txt (one album id per line).
# Optional: PETA_32=/path/to/peta_32.pth (the released checkpoint) to evaluate it first.
# Multi-GPU: NPROC=8 runs training under torchrun (--batch-size is per process).
set -euo pipefail
: "${ML_CUFED:?set ML_CUFED to the dataset root}"
OUT=${OUT:-runs/ml_cufed}
NPROC=${NPROC:-1}
DATA=(--data "$ML_CUFED" --layout cufed)

if [[ -n "${PETA_32:-}" ]]; then
  uv run miil album convert "$PETA_32" "$OUT/peta_32.safetensors"
  uv run miil album validate --checkpoint "$OUT/peta_32.safetensors" "${DATA[@]}" \
    --split "$ML_CUFED/test_split.txt" --importance-file "$ML_CUFED/image_importance.json" \
    --metrics-json "$OUT/peta_32_metrics.json"
fi

for recipe in peta_ml_cufed mean_ml_cufed; do
  uv run torchrun --standalone --nproc_per_node="$NPROC" -m miil.core.cli album train --recipe "$recipe" \
    "${DATA[@]}" --split "$ML_CUFED/train_split.txt" --val-split "$ML_CUFED/test_split.txt" \
    --out-dir "$OUT/$recipe" --num-workers 8
  uv run miil album validate --checkpoint "$OUT/$recipe" "${DATA[@]}" --split "$ML_CUFED/test_split.txt" \
    --importance-file "$ML_CUFED/image_importance.json" --metrics-json "$OUT/${recipe}_metrics.json" \
    --reports "$OUT/${recipe}_importance.json"
done
