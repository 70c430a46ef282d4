"""Running totals of an evaluation: everything the summary needs, kept per image as a few numbers.

No full-size prediction or annotation outlives its image, so eval's memory does not grow with the number of
images (PRMI has thousands): pooled scores come from confusion counts, pooled AP from a histogram
(`rootseg.metrics.patches.PooledAP`), patch scores and agreement from per-image rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rootseg.evaluation.stages import StageGrid, stage_patch_rows, stage_summary
from rootseg.metrics.patches import PooledAP, mean_over_images, patch_scores
from rootseg.metrics.pixels import summarize_counts

PATCH_SIZES = (512, 1024)


class EvalTotals:
    """`add` one image at a time; `summary` once at the end."""

    def __init__(
        self, threshold: float, patch_sizes: Sequence[int] = PATCH_SIZES, stage: StageGrid | None = None
    ) -> None:
        self.threshold = threshold
        #: RootSAM Table 1: patches of the stage's resized grid (`rootseg.evaluation.stages`)
        self.stage = stage
        self.stage_rows: list[dict[str, float]] = []
        self.rows: list[dict[str, Any]] = []
        self.pooled_ap = PooledAP()
        self.patch_rows: dict[int, list[dict[str, float]]] = {size: [] for size in patch_sizes}

    def add(self, row: dict[str, Any], probs: np.ndarray, target: np.ndarray) -> None:
        """One image's per_image row (with its confusion counts) and the arrays it was measured from."""
        self.rows.append(row)
        self.pooled_ap.update(probs, target)
        for size, patches in self.patch_rows.items():
            patches += patch_scores(probs, target, size, self.threshold)
        if self.stage is not None:
            self.stage_rows += stage_patch_rows(probs, target, self.stage, self.threshold)

    def summary(self) -> dict[str, Any]:
        """Pooled and per-image pixel scores, images without root, SegRoot's soft Dice, patch metrics."""
        if not self.rows:
            raise ValueError("no image was evaluated")
        pooled, _, per_image = summarize_counts(self.rows)
        ap_pooled = self.pooled_ap.compute()
        patches = {}
        for size, rows in self.patch_rows.items():
            patches[str(size)] = {
                **mean_over_images(rows, ("iou", "dice", "ap")),
                "iou_pooled": pooled["iou"],
                "dice_pooled": pooled["dice"],
                "ap_pooled": ap_pooled,
                "n_patches": len(rows),
                "n_scored": sum(math.isfinite(r["iou"]) for r in rows),
                "n_ap": sum(math.isfinite(r["ap"]) for r in rows),
            }
        stage = {"stage_patches": stage_summary(self.stage_rows, self.stage)} if self.stage is not None else {}
        return {
            **stage,
            "n_images": len(self.rows),
            "pooled": pooled,
            "per_image": {"mean": per_image["mean"], "sd": per_image["sd"], "n": per_image["n_with_root"]},
            "no_root_images": [{"name": self.rows[e["index"]]["name"], "fp": e["fp"]} for e in per_image["no_root"]],
            "segroot_soft_dice_mean": float(np.mean([r["segroot_soft_dice"] for r in self.rows])),
            "patches": patches,
            "best_threshold": self.pooled_ap.best_threshold(),
        }
