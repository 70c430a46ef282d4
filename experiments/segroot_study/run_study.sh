#!/usr/bin/env bash
# The SegRoot study of README.md: a U-Net trained for 35 minutes on a shared 2-core CPU, predict on the 52 scans,
# the annotations' traits without a model, a study of each, and the traits of the two compared. Outputs go to
# logs/segroot_study/ (git-ignored); compare.py writes the small tables and figures the README shows.
# Re-running resumes: a finished training run is kept, predict skips finished scans.
#   bash experiments/segroot_study/run_study.sh             # everything
#   CKPT=path/to/best.ckpt bash experiments/segroot_study/run_study.sh   # with a U-Net you have
set -euo pipefail
cd "$(dirname "$0")/../.."
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=offline
PY=${PY:-.venv/bin/python}
OUT=${OUT:-logs/segroot_study}
DATA=${DATA:-../shared/datasets/segroot}
DPI=300   # CI-600 scans of 21.59 cm x 19.3 cm in 2550 x 2273 px: 300 dpi (0.0847 mm per pixel)
mkdir -p "$OUT"
# absolute paths: step 5 links masks from folders below OUT, where a relative DATA would dangle
OUT=$(cd "$OUT" && pwd)
DATA=$(cd "$DATA" && pwd)

# 1. the U-Net: unet_segroot_cpu (Smith's recipe at 1/8 width) cut to 8 epochs and 35 minutes of wall clock
#    (the time limit ends it first on a shared machine), validation on the 13 val scans every second epoch; no
#    test split here (SegRoot's 13 test scans are held out). Not niced: the machine is shared fairly with other
#    jobs. predict uses the checkpoint with the best val F1 (checkpoints/epoch_*-f1_*.ckpt, the only one kept).
if [ -z "${CKPT:-}" ]; then
  if [ ! -f "$OUT/unet/checkpoints/last.ckpt" ]; then
    $PY -m rootseg.train +experiment=unet_segroot_cpu trainer.max_epochs=8 +trainer.max_time=00:00:35:00 \
        test=false hydra.run.dir=$OUT/unet > "$OUT/train.log" 2>&1
  fi
  CKPT=$(ls "$OUT"/unet/checkpoints/epoch_*.ckpt | head -1)
fi

# 2. predict: the 13 val scans first (never seen in training), then the 39 training scans, into one folder
#    (results.csv holds every scan; the traits and RhizoVision Explorer masks with it); step=tile: Smith's
#    non-overlapping grid, a third of the half-tile blending's tiles (a 2-core CPU shared with other jobs)
mkdir -p "$OUT/val_images" "$OUT/train_images"
$PY - "$DATA" "$OUT" <<'PYEOF'
import json, os, sys
from pathlib import Path
data, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
for split, stems in json.loads((data / "split.json").read_text()).items():
    for stem in stems:
        link = out / f"{split}_images" / f"{stem}.jpg"
        if not link.exists():
            os.symlink(data / "images" / f"{stem}.jpg", link)
PYEOF
for split in val train; do
  $PY -m rootseg.predict ckpt_path=$CKPT input=$OUT/${split}_images output=$OUT/predict dpi=$DPI rve=true \
      step=tile
done

# 3. the annotations' traits: no model needed
$PY -m rootseg.measure input=$DATA/masks dpi=$DPI output=$OUT/annotation/traits.csv

# 4. the studies: tube, location and date from the CI-600 names; the dates grouped by month (imaging sessions)
for side in prediction annotation; do
  table=$OUT/predict/results.csv
  [ $side = annotation ] && table=$OUT/annotation/traits.csv
  $PY -m rootseg.study input=$table output=$OUT/study_$side period=month
done

# 5. the masks against the annotation per split, no model (rootseg.compare: pixel scores and per-trait agreement,
# and the coverage of predict's trait intervals, calibrated by calibrate_intervals.py);
# the pairs are linked under one name each
for split in val train; do
  rm -rf $OUT/compare_$split && mkdir -p $OUT/compare_$split/pred $OUT/compare_$split/truth
  for stem in $(ls $OUT/${split}_images | sed 's/\.jpg$//'); do
    [ -f $OUT/predict/$stem.png ] || continue
    ln -s $OUT/predict/$stem.png $OUT/compare_$split/pred/$stem.png
    ln -s $DATA/masks/$stem-mask.jpg $OUT/compare_$split/truth/$stem.jpg
  done
  $PY -m rootseg.compare pred=$OUT/compare_$split/pred truth=$OUT/compare_$split/truth \
      output=$OUT/compare_$split/out dpi=$DPI intervals=$OUT/predict/results.csv
done

# 6. traits of the prediction against those of the annotation; Dice of the masks from step 5
$PY experiments/segroot_study/compare.py $OUT --data $DATA
