#!/usr/bin/env bash
# The GPU study of issue 17 in one command, inside BUDGET_S seconds (default 480: 8 minutes), at the
# repository's root on the GPU machine (experiments/gpu/README.md):
#   benchmarks (train_step at batch 8 and 32, the loader end to end, whole-scan predict, the RootSAM cache
#   with Hiera-L), then the full-width Smith U-Net trained on SegRoot for the time left (trainer.max_time),
#   then its best checkpoint scored on the 13 val scans at threshold 0.5 and 0.9.
#
#   bash experiments/gpu/run.sh            # on the GPU machine (installs .gpu-bundle/wheels if needed)
#   bash experiments/gpu/run.sh --smoke    # the same steps on a CPU with tiny sizes (tests/test_gpu_script.py)
#
# Every step runs under `timeout`: a step that fails or overruns is recorded (WORK/steps.jsonl) and the
# next one runs. Results: OUT/summary.json (every figure), OUT/summary.md (tables for benchmarks/RESULTS.md),
# OUT/run.log, OUT/outputs.tar.gz (logs, benchmark JSON, metrics, eval tables; no checkpoints). The
# working files go to WORK (default OUT/work; give a folder outside OUT where only a few files may come
# back, e.g. WORK=/tmp/gpu-work on the device machine).
#
# Settings (environment): OUT, WORK, PYTHON (default python3), BUNDLE (default .gpu-bundle), BUDGET_S,
# WORKERS (loader workers; default cores - 1), SKIP (step names not to run, e.g. SKIP="train_step predict"
# for a second, shorter try).
# Only command-line entry points are used (python -m rootseg.*, benchmarks/*.py), never rootseg's internals.
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

SMOKE=0
case "${1:-}" in
  --smoke) SMOKE=1 ;;
  "") ;;
  *) echo "usage: bash experiments/gpu/run.sh [--smoke]" >&2; exit 2 ;;
esac

PY=${PYTHON:-python3}
OUT=${OUT:-$REPO/logs/gpu/$(date +%Y-%m-%d_%H-%M-%S)$([ $SMOKE = 1 ] && echo _smoke)}
WORK=${WORK:-$OUT/work}
BUNDLE=${BUNDLE:-$REPO/.gpu-bundle}
mkdir -p "$OUT" "$WORK/logs" || exit 2
OUT=$(cd "$OUT" && pwd) WORK=$(cd "$WORK" && pwd)
CORES=$(nproc 2>/dev/null || echo 2)
WORKERS=${WORKERS:-$((CORES > 1 ? CORES - 1 : 1))}
if [ $SMOKE = 1 ]; then
  BUDGET_S=${BUDGET_S:-600} END_S=5 EVAL_S=120 TRAIN_MIN_S=60 SLACK_S=30 MIN_STEP_S=5
else
  # end: summary + archive; eval: both thresholds in parallel; train: the least fit time worth having;
  # slack: training's start-up and end around trainer.max_time (imports, 52 scans decoded, last checkpoint)
  BUDGET_S=${BUDGET_S:-480} END_S=20 EVAL_S=90 TRAIN_MIN_S=150 SLACK_S=45 MIN_STEP_S=20
fi
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=offline PYTHONUNBUFFERED=1 HYDRA_FULL_ERROR=1
# smoke: one thread per process (torch's threads spin-wait on a loaded 2-core machine; the sizes are tiny)
[ $SMOKE = 1 ] && export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec > >(tee -a "$OUT/run.log") 2> >(tee -a "$OUT/run.log" >&2)  # both into the log, stderr stays stderr
echo "run.sh $([ $SMOKE = 1 ] && echo --smoke) at $(date -u '+%Y-%m-%d %H:%M:%S UTC') on ${HOSTNAME:-?}: budget ${BUDGET_S} s, ${CORES} cores, ${WORKERS} loader workers"
echo "OUT=$OUT WORK=$WORK"
STEPS=$WORK/steps.jsonl
: > "$STEPS"

record() {  # record NAME STATUS RC SECONDS LIMIT
  printf '{"step": "%s", "status": "%s", "rc": %s, "seconds": %s, "limit_s": %s, "start": %s, "end": %s}\n' \
    "$1" "$2" "$3" "$4" "$5" "${6:-null}" "${7:-null}" >> "$STEPS"
  echo "== $1: $2 (rc $3, $4 s of at most $5 s)"
}

# step NAME CAP_S RESERVE_S CMD...: CMD under a timeout of CAP_S, shortened so that RESERVE_S seconds of the
# budget stay for what comes after; stdout to WORK/logs/NAME.out (the benchmarks' JSON), stderr to
# WORK/logs/NAME.err. Never fatal: the outcome goes to WORK/steps.jsonl.
step() {
  local name=$1 cap=$2 reserve=$3
  shift 3
  local left=$((BUDGET_S - SECONDS - reserve))
  local limit=$((cap < left ? cap : left))
  if [[ " ${SKIP:-} " == *" $name "* ]]; then
    record "$name" skipped null 0 0
    return 0
  fi
  if ((limit < MIN_STEP_S)); then
    record "$name" skipped null 0 "$limit"
    return 0
  fi
  echo "== $name (at most $limit s): $*"
  local start end rc
  start=$(date +%s.%N)
  timeout -k 10 "$limit" "$@" > "$WORK/logs/$name.out" 2> "$WORK/logs/$name.err"
  rc=$?
  end=$(date +%s.%N)
  local seconds status=ok
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  if ((rc == 124 || rc == 137)); then status=timeout; elif ((rc != 0)); then status=failed; fi
  [ $status = ok ] || tail -n 5 "$WORK/logs/$name.err" | sed "s/^/   $name: /"
  record "$name" "$status" "$rc" "$seconds" "$limit" "$start" "$end"
}

# --- 1. Python packages: the bundle's wheels where the machine lacks them ---------------------------
MODULES="hydra, omegaconf, albumentations, cma, iopath, sam2"
if ! "$PY" -c "import $MODULES" 2> /dev/null; then
  if ! ls "$BUNDLE"/wheels/*.whl > /dev/null 2>&1; then
    echo "run.sh: $PY cannot import one of $MODULES and there are no wheels in $BUNDLE/wheels:" \
      "build them here with 'make gpu-bundle' and carry .gpu-bundle with the command" >&2
    exit 2
  fi
  SITE=$WORK/site
  echo "== installing $(ls "$BUNDLE"/wheels/*.whl | wc -l) wheels from $BUNDLE/wheels into $SITE"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    "$BUNDLE"/wheels/*.whl || { echo "run.sh: installing the bundle's wheels failed (above)" >&2; exit 2; }
  export PYTHONPATH=$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}
  # the installed wheels beside the machine's own packages: stop now, not in every step, when they clash
  if ! "$PY" -c "import torch, lightning, $MODULES, sam2.modeling, rootseg.train" > "$WORK/logs/imports.err" 2>&1; then
    echo "run.sh: the Python packages do not import (PYTHONPATH=$PYTHONPATH):" >&2
    tail -n 5 "$WORK/logs/imports.err" >&2
    exit 2
  fi
fi
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}  # this checkout's rootseg first
if [ $SMOKE = 1 ]; then
  # the GPU machine has no wandb ("wandb stays home"): the smoke run proves nothing here imports it
  mkdir -p "$WORK/no_wandb/wandb"
  echo 'raise ImportError("wandb is not on the GPU machine: run.sh logs to CSV")' > "$WORK/no_wandb/wandb/__init__.py"
  export PYTHONPATH=$WORK/no_wandb:$PYTHONPATH
fi

# --- 2. data: SegRoot's train and val scans (the bundle's, or ../shared's); the smoke run cuts 2 scans ---
if [ $SMOKE = 1 ]; then
  export ROOTSEG_SHARED=$WORK/shared
  SRC=${SEGROOT:-$REPO/../shared/datasets/segroot}
  if [ -f "$SRC/split.json" ]; then
    # 1 train + 1 val scan, each cut into its 3 most rooted 240 px windows (>= 3 val images: length agreement)
    "$PY" experiments/gpu/bundle.py data "$ROOTSEG_SHARED/datasets/segroot" --segroot "$SRC" --scans 2 \
      --crop 240 --crops 3 || exit 2
    DATA=(data=segroot)
    LOADER_DATA=(--segroot)
  else
    # no SegRoot here: the built-in synthetic generator (3 val images for the length agreement)
    DATA=(data=synthetic "data.root=$WORK/synthetic" data.source.n=6 "data.source.size=[240,240]"
      data.source.val_fraction=0.5 data.source.test_fraction=0.0)
    LOADER_DATA=(--images 3 --size 240)
  fi
else
  if [ -f "$BUNDLE/shared/datasets/segroot/split.json" ]; then
    export ROOTSEG_SHARED=$BUNDLE/shared
  elif [ ! -f "${ROOTSEG_SHARED:-$REPO/../shared}/datasets/segroot/split.json" ]; then
    echo "run.sh: no SegRoot scans: neither $BUNDLE/shared/datasets/segroot nor" \
      "${ROOTSEG_SHARED:-$REPO/../shared}/datasets/segroot; build the bundle with 'make gpu-bundle'" >&2
    exit 2
  fi
  DATA=(data=segroot)
  LOADER_DATA=(--segroot)
fi

# nvidia-smi's utilisation samples (share of time a kernel ran), matched to each step's window in summarize.py
SAMPLER=
if command -v nvidia-smi > /dev/null 2>&1 && [ $SMOKE = 0 ]; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 \
    > "$WORK/gpu_samples.csv" 2> /dev/null &
  SAMPLER=$!
fi

# the machine, for the summary
"$PY" -c "
import json, os, platform, shutil, torch
cuda = torch.cuda.is_available()
shm = shutil.disk_usage('/dev/shm').total / 2**30 if os.path.isdir('/dev/shm') else None  # loader workers use it
print(json.dumps({'device': torch.cuda.get_device_name() if cuda else 'cpu', 'torch': torch.__version__,
    'cuda': torch.version.cuda, 'python': platform.python_version(), 'cpu_count': os.cpu_count(),
    'gpu_memory_gib': round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
    'dev_shm_gib': round(shm, 1) if shm is not None else None}))
" > "$WORK/machine.json" 2> "$WORK/logs/machine.err"

# --- 3. benchmarks: each keeps the training and the evaluation's time in reserve ------------------------
KEEP=$((TRAIN_MIN_S + SLACK_S + EVAL_S + END_S))
# the loader is compared with the measured training step when there is one (else dataloader.py's assumption)
step_rate() { grep -q best_tiles_per_s "$WORK/logs/train_step.out" 2> /dev/null && echo --train-json "$WORK/logs/train_step.out"; }
if [ $SMOKE = 1 ]; then
  step train_step 120 $KEEP "$PY" benchmarks/train_step.py --net micro --device cpu --batch-sizes 1 2 \
    --steps 1 --warmup 1 --compile-backend eager --compile-budget 60 --threads 1
  step dataloader 120 $KEEP "$PY" benchmarks/dataloader.py "${LOADER_DATA[@]}" --workers 0 1 --batch-size 2 \
    --batches 2 --end-to-end --net nano $(step_rate)
  step predict 120 $KEEP "$PY" benchmarks/predict.py --net micro --device cpu --size 240 240 --repeats 1 --tta
  step rootsam_cache 120 $KEEP "$PY" benchmarks/rootsam_cache.py --config micro --image-size 128 --tile 128 \
    --images 1 --epochs 1 --batch-size 2 --device cpu
else
  step train_step 130 $KEEP "$PY" benchmarks/train_step.py --net smith --device cuda --batch-sizes 8 32 \
    --steps 5 --warmup 3 --compile-budget 45
  step dataloader 60 $KEEP "$PY" benchmarks/dataloader.py "${LOADER_DATA[@]}" --workers 1 "$WORKERS" \
    --batches 40 --end-to-end --net smith $(step_rate)
  step predict 45 $KEEP "$PY" benchmarks/predict.py --net smith --device cuda --size 2273 2550 --repeats 2 --tta
  step rootsam_cache 60 $KEEP "$PY" benchmarks/rootsam_cache.py --config sam2.1_hiera_l --image-size 1024 \
    --tile 1024 --images 4 --epochs 2 --device cuda
fi

# --- 4. train for the time left, time-boxed by trainer.max_time -----------------------------------------
TRAIN_LIMIT=$((BUDGET_S - SECONDS - EVAL_S - END_S))
FIT_S=$((TRAIN_LIMIT - SLACK_S))
((FIT_S < 10)) && FIT_S=10
MAX_TIME=$(printf '00:%02d:%02d:%02d' $((FIT_S / 3600)) $((FIT_S % 3600 / 60)) $((FIT_S % 60)))
if [ $SMOKE = 1 ]; then
  # trainer=gpu's settings on the CPU: fp32 (bf16 is slow on most CPUs), one worker, no pinned memory
  TRAIN=(trainer=gpu trainer.accelerator=cpu trainer.precision=32-true data.pin_memory=false data.num_workers=1
    model/net=unet_tiny data.tile_in=276 data.tile_out=188 data.candidates_per_image=4
    data.max_tiles_per_image=2 data.batch_size=2 trainer.max_epochs=1)
else
  TRAIN=(trainer=gpu "data.num_workers=$WORKERS")
fi
step train $TRAIN_LIMIT $((EVAL_S + END_S)) "$PY" -m rootseg.train +experiment=unet_smith2020 "${DATA[@]}" \
  "${TRAIN[@]}" model.channels_last=true logger=csv test=false "++trainer.max_time=$MAX_TIME" \
  "hydra.run.dir=$WORK/train"
echo "trainer.max_time=$MAX_TIME" > "$WORK/train_max_time.txt"

# --- 5. the best checkpoint on the val scans, thresholds 0.5 and 0.9 side by side ------------------------
BEST=$(ls -t "$WORK"/train/checkpoints/epoch_*.ckpt 2> /dev/null | head -1)
[ -n "$BEST" ] || BEST=$(ls "$WORK"/train/checkpoints/last.ckpt 2> /dev/null)
if [ -n "$BEST" ]; then
  echo "$BEST" > "$WORK/best_checkpoint.txt"
  EVALS=()
  for t in 0.5 0.9; do
    step "eval_t$t" $EVAL_S $END_S "$PY" -m rootseg.eval "ckpt_path=$BEST" split=val threshold=$t dpi=600 \
      figures=2 "hydra.run.dir=$WORK/eval_t$t" &
    EVALS+=($!)
  done
  wait "${EVALS[@]}"  # by pid: a bare `wait` would also wait for the log's tee, which never ends
else
  record eval_t0.5 skipped null 0 0
  record eval_t0.9 skipped null 0 0
fi
[ -n "$SAMPLER" ] && kill "$SAMPLER" 2> /dev/null

# --- 6. summary (JSON + Markdown) and one archive of everything but checkpoints ---------------------------
"$PY" experiments/gpu/summarize.py "$WORK" "$OUT" --mode "$([ $SMOKE = 1 ] && echo smoke || echo gpu)" \
  --bundle "$BUNDLE" --budget "$BUDGET_S"
rc=$?
# (a device call brings back files of at most 16 MiB: without the figures if it is larger)
EXCLUDE=(--exclude='*.ckpt' --exclude=site --exclude=no_wandb --exclude='*.npy' --exclude=shared --exclude=synthetic)
tar -czf "$OUT/outputs.tar.gz" -C "$WORK" "${EXCLUDE[@]}" . 2> /dev/null
if (($(stat -c %s "$OUT/outputs.tar.gz") > 15 * 1024 * 1024)); then
  tar -czf "$OUT/outputs.tar.gz" -C "$WORK" "${EXCLUDE[@]}" --exclude=figures --exclude=predictions . 2> /dev/null
fi
echo "run.sh: done in ${SECONDS} s: $OUT/summary.json, $OUT/summary.md, $OUT/outputs.tar.gz"
exit $rc
