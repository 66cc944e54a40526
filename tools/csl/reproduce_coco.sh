#!/usr/bin/env bash
# Reproduce the CSL paper's simulated-COCO table (arXiv 2110.10955): FPC(1000) and RPS(0.5), the columns
# Ignore CE, Negative CE, Negative ASL and CSL, TResNet-M (ImageNet-21K pretrained, downloaded by timm).
# For GPU machines: COCO=/data/coco GPUS=8 tools/csl/reproduce_coco.sh --batch-size 8
# (--batch-size is per process: 8 x 8 GPUs keeps the reference batch of 64; extra options go to every run).
# COCO must hold annotations/instances_{train,val}2014.json, train2014/ and val2014/.
set -euo pipefail
COCO=${COCO:?set COCO to the MS-COCO 2014 folder}
GPUS=${GPUS:-1}
OUT=${OUT:-runs/csl}
DATA=(--train "$COCO/annotations/instances_train2014.json" --train-root "$COCO/train2014"
      --val "$COCO/annotations/instances_val2014.json" --val-root "$COCO/val2014")
for setting in fpc1000 rps0.5; do
    for column in ignore_ce negative_ce negative_asl csl; do
        recipe="coco_${setting}_${column}"
        # CSL runs its two stages (temporary ignore model -> prior.csv -> selective model) in one call.
        torchrun --standalone --nproc_per_node="$GPUS" -m miil.core.cli csl train --recipe "$recipe" \
            "${DATA[@]}" --out-dir "$OUT/$recipe" --num-workers 8 "$@"
    done
done
for run in "$OUT"/coco_*; do
    echo "$(basename "$run") $(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["metrics"]["mAP"])' "$run/best.json")"
done
