#!/usr/bin/env bash
# HardCoRe-NAS (arXiv 2102.11646) on ImageNet with miil-hardcore, end to end, for GPU users.
#
#   bash tools/hardcore/reproduce_imagenet.sh /data/imagenet/train /data/imagenet/val [NGPUS] [TARGET_MS]
#
# The latency table is measured on THIS machine's CPU (1 thread, batch 1, as the paper's Xeon numbers), so run the
# `lut` and `calibrate` steps on the device you deploy to and copy the table here if that is another machine.
# Targets of the published models: A 38, B 40, C 44, D 50, E 55, F 60 ms (Xeon); pick yours from `calibrate`'s range.
set -euo pipefail
TRAIN=${1:?path to the ImageNet train folder (DIR/<wnid>/<image>)}
VAL=${2:?path to the ImageNet val folder (DIR/<wnid>/<image>)}
NGPUS=${3:-8}
TARGET=${4:-40}
OUT=${OUT:-runs/hardcore}
RUN="torchrun --standalone --nproc_per_node ${NGPUS} -m miil.core.cli"

# 1. latency table on the target device, and its check on random networks (stores an affine calibration)
miil hardcore lut --out "${OUT}/lut.json" --threads 1 --batch-size 1 --repeats 50
miil hardcore calibrate --lut "${OUT}/lut.json" --num-archs 20 --update

# 2. supernet: heaviest path (300 epochs), then multipath one-shot training with KD (100 epochs);
#    both use 80% of the training set, the other 20% drives the search
${RUN} hardcore train-supernet --recipe heaviest_path_imagenet --data-dir "${TRAIN}" --val-dir "${VAL}" \
    --out-dir "${OUT}/heaviest" --batch-size $((256 / NGPUS)) --amp true
${RUN} hardcore train-supernet --recipe multipath_imagenet --init "${OUT}/heaviest" --data-dir "${TRAIN}" \
    --val-dir "${VAL}" --out-dir "${OUT}/multipath" --batch-size $((200 / NGPUS)) --amp true

# 3. search under the latency target (10,000 block-coordinate Frank-Wolfe steps, batch 16), hard constraint
${RUN} hardcore search --supernet "${OUT}/multipath" --lut "${OUT}/lut.json" --data-dir "${TRAIN}" \
    --latency-ms "${TARGET}" --out "${OUT}/arch_${TARGET}ms.json"

# 4. child with inherited weights, fine-tuned 50 epochs with KD from the heaviest path; then validation
${RUN} hardcore finetune --supernet "${OUT}/multipath" --teacher "${OUT}/heaviest" --arch "${OUT}/arch_${TARGET}ms.json" \
    --data-dir "${TRAIN}" --val-dir "${VAL}" --out-dir "${OUT}/finetune_${TARGET}ms" --batch-size $((128 / NGPUS))
miil hardcore validate --checkpoint "${OUT}/finetune_${TARGET}ms" --data-dir "${VAL}"
