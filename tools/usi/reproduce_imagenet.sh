#!/usr/bin/env bash
# USI (arXiv 2204.03475) on ImageNet-1K with 8 GPUs: the paper's recipe for one backbone, then validation and the
# GPU speed-accuracy comparison. Not run in CI (needs ImageNet, GPUs and days of compute).
#
#   DATA=/data/imagenet TEACHER=/weights/tresnet_l_v2_83_9.pth RECIPE=usi_resnet50 bash tools/usi/reproduce_imagenet.sh
#
# DATA holds train/<wnid>/*.JPEG and val/<wnid>/*.JPEG. TEACHER is the authors' TResNet-L-V2 file (InplaceABN layout,
# converted on load) or a safetensors export of timm's tresnet_v2_l.miil_in21k_ft_in1k; leave it empty to let timm
# download that teacher. RECIPE is a row of `miil usi train --help` (usi_resnet50, usi_levit_384, usi_mixer_b, ...).
set -euo pipefail

DATA=${DATA:?set DATA to the ImageNet root}
RECIPE=${RECIPE:-usi_resnet50}
GPUS=${GPUS:-8}
OUT=${OUT:-runs/$RECIPE}
TEACHER_ARGS=()
if [ -n "${TEACHER:-}" ]; then TEACHER_ARGS=(--teacher-checkpoint "$TEACHER"); fi

# 300 epochs, 128 images per GPU, AdamW 2e-3 / 2e-2, cosine with 5 warm-up epochs, mixup 0.8 / cutmix 1.0,
# RandAugment m7, repeated augmentation x3, EMA 0.99996, KD alpha 5 from the BN-fused teacher (all recipe defaults).
# The original script also ran 10 cooldown epochs: add --cooldown-epochs 10 to match it exactly.
torchrun --standalone --nproc_per_node="$GPUS" -m miil.core.cli usi train \
    --recipe "$RECIPE" --data "$DATA" --out-dir "$OUT" --num-workers 10 \
    --teacher-channels-last true --channels-last true "${TEACHER_ARGS[@]}"

uv run miil usi validate --run "$OUT" --data "$DATA/val" --device cuda --amp true --batch-size 256 \
    --output "$OUT/val.json"

# Speed-accuracy comparison on this GPU (BN fused, channels-last, batch 256, fp16), with the paper's top-1 values
# for the backbones it lists and this run's measured top-1 for the trained one.
uv run miil usi pareto --device cuda --amp true --batch-size 256 --compile true --paper-accuracies \
    --accuracy-file "$OUT/val.json" --out-dir "$OUT/pareto" \
    --models resnet50 tresnet_m levit_384 mobilenetv3_large_100 efficientnet_b0 convnext_small regnety_320 \
    swin_small_patch4_window7_224 vit_small_patch16_224 mixer_b16_224 resmlp_12_224 edgenext_small
