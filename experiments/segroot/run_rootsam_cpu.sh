#!/usr/bin/env bash
# RootSAM at real scale on the SegRoot scans, on a 2-core CPU, with a RANDOM-weight SAM 2.1 Hiera-T: proves
# that stage 1 (2560 -> 512 px tiles), stage 2 (2048 -> 1024 px tiles, from stage 1) and eval run end to end
# on real images. Accuracy is meaningless without Meta's weights (give model.net.ckpt_path=... for that).
# A few batches per stage only: the Hiera-T encoder takes ~4 s per tile here.
set -euo pipefail
cd "$(dirname "$0")/../.."
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=offline
PY=.venv/bin/python
OUT=${OUT:-logs/segroot}
FEW="trainer.max_epochs=1 trainer.limit_train_batches=20 trainer.limit_val_batches=4 trainer.limit_test_batches=4
     trainer.num_sanity_val_steps=0 trainer.accelerator=cpu model/net=sam2.1_hiera_t data=segroot"
$PY -m rootseg.train +experiment=rootsam_stage1 $FEW hydra.run.dir=$OUT/rootsam_stage1
$PY -m rootseg.train +experiment=rootsam_stage2 $FEW model.init_ckpt=$OUT/rootsam_stage1/checkpoints/last.ckpt \
    hydra.run.dir=$OUT/rootsam_stage2
# the 13 whole val scans prompt-free: an 8 x 8 click grid per 1024 px tile (the default 16 x 16 took ~130 s
# per scan here); the train runs' test/ metrics are the paper's protocol (one click per annotated root object)
$PY -m rootseg.eval ckpt_path=$OUT/rootsam_stage2/checkpoints/last.ckpt dpi=600 grid_points_per_side=8 \
    hydra.run.dir=$OUT/eval_rootsam_stage2
