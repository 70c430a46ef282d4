"""RootSAM Table 1's protocol in eval: patch metrics on a stage's resized grid.

Parth et al. score mIoU, Dice and mAP on the patches the model works on: each scan resized to 2560 x 2560 and
cut into 512 px patches (stage 1, the primary scale), or resized to 2048 x 2048 and cut into 1024 px patches
(stage 2; a stage 1 model scored there is their cross-scale validation). `stage=stage1|stage2` (the `stage`
config group, `stage_grid` in the composed config) picks one for an eval run; without it, a RootSAM checkpoint
is scored on its own stage's grid, and a U-Net or Frangi checkpoint on none (its original-resolution patches
only). A RootSAM checkpoint also runs on the chosen grid (its inference `resize` and `tile`); the other kinds
predict as always and only their scoring is resized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rootseg.metrics.patches import mean_over_images, patch_scores
from rootseg.tiling.resize import resize_pair


@dataclass(frozen=True)
class StageGrid:
    """A stage's grid: the square side scans are resized to and the side of its patches (tiles)."""

    name: str
    resize: int
    tile: int
    #: "stage=" when asked for on the command line, "checkpoint" when the checkpoint's own
    source: str = "stage="

    def describe(self) -> str:
        return f"{self.name} grid: resized to {self.resize} px, {self.tile} px patches ({self.source})"


def resolve_stage(cfg: Any, module: Any) -> StageGrid | None:
    """The grid `stage=` names, else the RootSAM checkpoint's own (None for other kinds without `stage=`)."""
    grid = cfg.get("stage_grid")
    if grid:
        resize, tile = int(grid["resize"]), int(grid["tile"])
        if tile > resize:
            raise ValueError(f"stage {cfg.get('stage_name')}: tile {tile} is larger than the resized side {resize}")
        return StageGrid(str(cfg.get("stage_name") or "stage"), resize, tile)
    if getattr(module, "kind", None) != "rootsam" or not getattr(module, "resize", None):
        return None
    name = str((module.run_config or {}).get("stage_name") or "its stage")
    return StageGrid(name, int(module.resize), int(module.tile), source="checkpoint")


def stage_patch_rows(probs: np.ndarray, target: np.ndarray, stage: StageGrid, threshold: float) -> list[dict]:
    """One image's patch scores on the stage's grid: probabilities resized as images are (bilinear, area-averaged
    when shrinking), the annotation by nearest neighbour (its 0 / 1 / 255 values kept), cut into tile patches."""
    resized_probs, resized_target = resize_pair(
        np.ascontiguousarray(probs, dtype=np.float32), np.ascontiguousarray(target, dtype=np.uint8), stage.resize
    )
    return patch_scores(resized_probs, resized_target, stage.tile, threshold)


def stage_summary(rows: list[dict], stage: StageGrid) -> dict[str, Any]:
    """summary.json's `stage_patches`: the stage, its grid, and mIoU / Dice / mAP over the grid's patches."""
    return {
        "stage": stage.name,
        "source": stage.source,
        "resize": stage.resize,
        "patch": stage.tile,
        **mean_over_images(rows, ("iou", "dice", "ap")),
        "n_patches": len(rows),
        "n_scored": sum(math.isfinite(r["iou"]) for r in rows),
        "n_ap": sum(math.isfinite(r["ap"]) for r in rows),
    }
