#!/usr/bin/env bash
# The SegRoot study as recorded in README.md, on a 2-core CPU. Re-running resumes: training continues from
# its last checkpoint, the Frangi search from its saved state, predict skips finished images.
set -euo pipefail
cd "$(dirname "$0")/../.."
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=offline
PY=.venv/bin/python
OUT=${OUT:-logs/segroot}
resume() { [ -f "$1/checkpoints/last.ckpt" ] && echo "ckpt_path=last" || true; }

# 1. U-Net (unet_segroot_cpu: Smith's recipe at 1/8 width, AdamW + cosine, 30 epochs)
$PY -m rootseg.train +experiment=unet_segroot_cpu hydra.run.dir=$OUT/unet $(resume $OUT/unet)
BEST=$(ls -t $OUT/unet/checkpoints/epoch_*.ckpt | head -1)

# 2. the 13 val images: Smith's non-overlapping grid (step=tile), half-tile Gaussian blending (the default,
#    what rootseg.predict writes), SegRoot's threshold 0.9, and SegRoot's one-pixel-dilated masks (on the grid,
#    as recorded in README.md)
$PY experiments/segroot/derived_sets.py $OUT
$PY -m rootseg.eval ckpt_path=$BEST dpi=600 step=tile hydra.run.dir=$OUT/eval_grid
$PY -m rootseg.eval ckpt_path=$BEST dpi=600 hydra.run.dir=$OUT/eval_blend
$PY -m rootseg.eval ckpt_path=$BEST threshold=0.9 step=tile hydra.run.dir=$OUT/eval_t09
$PY -m rootseg.eval ckpt_path=$BEST data=folder data.root=$OUT/dilated1 data.source.mask_suffix=-mask \
    threshold=0.9 step=tile hydra.run.dir=$OUT/eval_dilated_t09
$PY -m rootseg.eval ckpt_path=$BEST data=folder data.root=$OUT/dilated1 data.source.mask_suffix=-mask \
    step=tile hydra.run.dir=$OUT/eval_dilated

# 3. Smith's Frangi + CMA-ES baseline (downscale 4; ~150 evaluations of the 39 training images)
$PY -m rootseg.train +experiment=frangi_cmaes data=segroot model.downscale=4 model.upsample=linear \
    model.max_evals=150 model.workers=2 hydra.run.dir=$OUT/frangi
$PY -m rootseg.eval ckpt_path=$(ls -t $OUT/frangi/checkpoints/*.ckpt | head -1) dpi=600 hydra.run.dir=$OUT/eval_frangi
$PY -m rootseg.report runs=[$OUT/eval_frangi,$OUT/eval_grid,$OUT/eval_blend] \
    names=[frangi_cmaes,unet_grid,unet_blended] output=$OUT/report

# 4. predict the val scans (re-running skips what is done; a SIGKILL after 6 of 13 lost nothing)
$PY -m rootseg.predict ckpt_path=$BEST input=$OUT/val_images output=$OUT/predict dpi=600
