#!/usr/bin/env bash
# The GPU figures of issue 18 in one run (about 4-5 minutes expected on an H200; every step has its own time limit,
# 8 minutes at most in all): the engine's overhead on a realistic step (timm resnet50, 224 px, batch 128, AMP,
# channels-last), EAT's batched augmentations vs the per-clip loop, and the CSL loss vs its equation-level reference
# at batch 128 and 1024 x 9,605 classes. No downloads: models are randomly initialised, data is synthetic.
#
#   bash tools/bench/gpu_check.sh            # from the repository root; results in $OUT/<name>.txt, else ./gpu_check/
#
# Python: $PYTHON if set, else the workspace's .venv, else python3. The packages are imported from the checkout
# (PYTHONPATH), so the interpreter needs only miil-core's dependencies (torch with CUDA and triton, torchvision, timm,
# numpy, pillow, safetensors, tqdm); the workspace .venv has them.
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/gpu_check}"
mkdir -p "$OUT"
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD/shared/miil-core/src:$PWD/packages/miil-audio/src:$PWD/packages/miil-csl/src${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1

run() {  # run NAME LIMIT_S ARGS...: one benchmark, its output in $OUT/NAME.txt, its time and status appended
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    echo "== $name: $*" | tee "$OUT/$name.txt"
    timeout "$limit" "$PYTHON" "$@" >>"$OUT/$name.txt" 2>&1
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - t0)) s (limit $limit s)" | tee -a "$OUT/$name.txt"
}

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
    "$PYTHON" -c "import torch, timm; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'timm', timm.__version__, 'gpu', torch.cuda.get_device_name(0))" 2>&1
} >"$OUT/env.txt"
cat "$OUT/env.txt"

# Engine: 30 steps per epoch, 3 epochs (the first is warm-up), 2 interleaved runs of each loop (~1.5 min).
run engine 150 tools/bench/engine.py --device cuda --workloads resnet50 --steps 30 --epochs 3 --repeats 2 --workers 8
# Audio: EAT-S inference and the augmentation stage at batch 64, per-clip loop vs batched (~1 min).
run audio 90 tools/bench/audio.py --device cuda --batch 64 --repeats 5 --inference EAT-S
# CSL: both batch sizes, the automatic kernel (compiled on CUDA) and the eager dense pass, 30 timed calls each;
# the first call of each compiled variant (compilation) is reported apart (~2-3 min).
run csl 240 tools/bench/csl.py --device cuda --batches 128,1024 --kernels auto,dense --repeats 30

echo "results in $OUT: $(ls "$OUT" | tr '\n' ' ')"
