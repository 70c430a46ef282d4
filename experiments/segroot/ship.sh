#!/usr/bin/env bash
# Ship a trained SegRoot U-Net checkpoint as the packaged model segroot-ci600 (rootseg/models/shipped/):
#   CKPT=/path/to/epoch_NNN.ckpt bash experiments/segroot/ship.sh
# 1. eval CKPT on the 13 val scans -> the threshold with the best pooled F1 (chosen on val);
# 2. ship.py weights: the weights-only file with that threshold inside, its sha256 in manifest.json;
# 3. eval the shipped model by name on the same scans, at its threshold -> the card's scores, measured;
# 4. ship.py card: the model card from step 3. Each eval is ~15-20 s per scan on 2 idle cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python}
OUT=${OUT:-logs/segroot/ship}
: "${CKPT:?set CKPT to the checkpoint to ship}"
# the training command, for the card; STATUS: an optional line on where the model stands
RECIPE=${RECIPE:-python -m rootseg.train +experiment=unet_segroot_cpu trainer.precision=bf16-mixed}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
$PY -m rootseg.eval ckpt_path="$CKPT" split=val dpi=300 hydra.run.dir="$OUT/eval_checkpoint"
$PY experiments/segroot/ship.py weights "$CKPT" --eval "$OUT/eval_checkpoint"
$PY -m rootseg.eval ckpt_path=segroot-ci600 split=val dpi=300 hydra.run.dir="$OUT/eval_shipped"
$PY experiments/segroot/ship.py card --eval "$OUT/eval_shipped" --recipe "$RECIPE" --status "${STATUS:-}"
$PY -m rootseg.models
