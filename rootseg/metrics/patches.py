"""RootSAM's patch metrics (Parth et al. Table 1): IoU, Dice and AP per 512 / 1024 px patch, averaged over the
patches where each is defined, and average precision pooled over every pixel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rootseg.io.arrays import IGNORE_INDEX
from rootseg.metrics.pixels import _check_target, confusion, scores


def average_precision(prob: np.ndarray, target: np.ndarray) -> float:
    """Area under the precision-recall step curve, as sklearn's average_precision_score.

    AP = sum_n (R_n - R_{n-1}) P_n over the distinct probability values taken as thresholds, from the
    highest down (ties share one threshold). NaN when the (non-ignored) target holds no root.
    """
    prob = np.asarray(prob, dtype=np.float64).ravel()
    target = np.asarray(target).ravel()
    if prob.shape != target.shape:
        raise ValueError(f"prob has {prob.size} values but target {target.size}")
    valid = target != IGNORE_INDEX
    prob, truth = prob[valid], target[valid] == 1
    positives = int(np.count_nonzero(truth))
    if positives == 0:
        return math.nan
    order = np.argsort(-prob, kind="stable")
    prob, truth = prob[order], truth[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(prob)), prob.size - 1]
    true_pos = np.cumsum(truth)[last_of_tie]
    precision = true_pos / (last_of_tie + 1)
    recall = true_pos / positives
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


class PooledAP:
    """Average precision over all labelled pixels of many images, in bounded memory.

    `update` adds one image; `compute` gives the AP of all pixels added so far, as `average_precision` of
    the concatenated pixels would, except that probabilities are first rounded to multiples of 1 / `bins`
    (default 2^-20, about 1e-6): pixels within one step share a threshold. Counts of pixels and of root
    pixels per step replace the pixels themselves (two arrays of `bins` + 1 integers).
    """

    def __init__(self, bins: int = 2**20) -> None:
        if bins < 1:
            raise ValueError(f"bins must be positive, got {bins}")
        self.bins = int(bins)
        self.total = np.zeros(self.bins + 1, np.int64)
        self.positive = np.zeros(self.bins + 1, np.int64)

    def update(self, prob: np.ndarray, target: np.ndarray) -> None:
        prob = np.asarray(prob, dtype=np.float64)
        target = _check_target(target)
        if prob.shape != target.shape:
            raise ValueError(f"prob shape {prob.shape} differs from target shape {target.shape}")
        valid = target != IGNORE_INDEX
        index = np.rint(np.clip(prob[valid], 0.0, 1.0) * self.bins).astype(np.int64)
        self.total += np.bincount(index, minlength=self.bins + 1)
        self.positive += np.bincount(index[target[valid] == 1], minlength=self.bins + 1)

    def compute(self) -> float:
        """The AP so far; NaN when no root pixel was added."""
        used = self.total[::-1] > 0  # thresholds from the highest probability down
        true_pos = np.cumsum(self.positive[::-1][used])
        if true_pos.size == 0 or true_pos[-1] == 0:
            return math.nan
        precision = true_pos / np.cumsum(self.total[::-1][used])
        recall = true_pos / true_pos[-1]
        return float(np.sum(np.diff(recall, prepend=0.0) * precision))

    def best_threshold(self, step: float = 0.01) -> dict[str, float]:
        """The threshold (a multiple of `step` in (0, 1), the lowest of equals) with the highest pooled F1 of the
        pixels added so far, with its precision and recall; F1 0 at threshold 0.5 when no root pixel was added.
        A model trained with focal loss is often under-confident: on validation images this is the `threshold=`
        to predict with."""
        if not 0 < step < 1:
            raise ValueError(f"step must lie strictly between 0 and 1, got {step}")
        roots = int(self.positive.sum())
        if roots == 0:
            return {"threshold": 0.5, "f1": 0.0, "precision": math.nan, "recall": math.nan}
        thresholds = np.arange(1, int(round(1 / step))) * step
        # pixels at or above each threshold: a pixel's step index i stands for probability i / bins
        start = np.ceil(thresholds * self.bins - 1e-9).astype(np.int64)
        kept = np.cumsum(self.total[::-1])[::-1][start]
        true_pos = np.cumsum(self.positive[::-1])[::-1][start]
        f1 = 2 * true_pos / (kept + roots)
        best = int(np.argmax(f1))
        return {
            "threshold": round(float(thresholds[best]), 6),
            "f1": float(f1[best]),
            "precision": float(true_pos[best] / kept[best]) if kept[best] else math.nan,
            "recall": float(true_pos[best] / roots),
        }


def cut_patches(height: int, width: int, patch_size: int) -> list[tuple[slice, slice]]:
    """Non-overlapping patch windows covering every pixel; the last row and column may be smaller."""
    if patch_size < 1:
        raise ValueError(f"patch_size must be positive, got {patch_size}")
    return [
        (slice(top, min(top + patch_size, height)), slice(left, min(left + patch_size, width)))
        for top in range(0, height, patch_size)
        for left in range(0, width, patch_size)
    ]


def patch_scores(pred_prob: np.ndarray, target: np.ndarray, patch_size: int, threshold: float = 0.5) -> list[dict]:
    """One row per patch (see `patch_metrics`): window, has_root, has_pred, iou, dice, ap.

    iou and dice are NaN for a patch empty in both truth and prediction, ap is NaN without root in the
    truth; gather rows over a test set and average them with `mean_over_images` for dataset figures.
    """
    prob = np.asarray(pred_prob, dtype=np.float64)
    target = _check_target(target)
    if prob.shape != target.shape or prob.ndim != 2:
        raise ValueError(f"pred_prob {prob.shape} and target {target.shape} must be the same 2-D shape")
    pred = prob >= threshold
    rows = []
    for window in cut_patches(*prob.shape, patch_size):
        counts = confusion(pred[window], target[window])
        has_root = counts["tp"] + counts["fn"] > 0
        has_pred = counts["tp"] + counts["fp"] > 0
        overlap = scores(**counts) if has_root or has_pred else {"iou": math.nan, "dice": math.nan}
        rows.append(
            {
                "top": window[0].start,
                "left": window[1].start,
                "has_root": has_root,
                "has_pred": has_pred,
                "iou": overlap["iou"],
                "dice": overlap["dice"],
                "ap": average_precision(prob[window], target[window]) if has_root else math.nan,
            }
        )
    return rows


def patch_metrics(
    pred_prob: np.ndarray, target: np.ndarray, patch_size: int, threshold: float = 0.5
) -> dict[str, float]:
    """RootSAM's evaluation: per-patch mIoU, Dice and mAP over `patch_size` squares, and pooled versions.

    The image is cut into non-overlapping `patch_size` x `patch_size` patches from the top-left (RootSAM
    resizes to 2560 or 2048 so they tile exactly; otherwise the last row and column are smaller patches).
    Per patch: IoU and Dice of `pred_prob >= threshold` against the target, and AP of the probabilities.
    `miou_per_patch` and `dice_per_patch` average over patches with root in the truth or the prediction
    (a patch empty in both has nothing to score, and counting it as 1.0 would reward blank soil);
    `map_per_patch` averages over patches with root in the truth (AP is undefined without). Pooled
    versions score all pixels of the image at once (both empty: 1.0, as in `scores`). Ignored (255)
    pixels count nowhere. NaN where no patch qualifies. `n_patches`, `n_scored` and `n_ap` say how many
    patches went into each mean.
    """
    rows = patch_scores(pred_prob, target, patch_size, threshold)
    means = mean_over_images(rows, ("iou", "dice", "ap"))
    prob = np.asarray(pred_prob, dtype=np.float64)
    pooled = scores(**confusion(prob >= threshold, target))
    return {
        "miou_per_patch": means["iou"],
        "dice_per_patch": means["dice"],
        "map_per_patch": means["ap"],
        "iou_pooled": pooled["iou"],
        "dice_pooled": pooled["dice"],
        "ap_pooled": average_precision(prob, target),
        "n_patches": len(rows),
        "n_scored": sum(math.isfinite(row["iou"]) for row in rows),
        "n_ap": sum(math.isfinite(row["ap"]) for row in rows),
    }


def mean_over_images(rows: Sequence[dict], keys: Sequence[str]) -> dict[str, float]:
    """NaN-skipping mean of per-image (or per-patch) rows, for tables."""
    result = {}
    for key in keys:
        values = np.array([row[key] for row in rows], dtype=np.float64)
        values = values[np.isfinite(values)]
        result[key] = float(values.mean()) if values.size else math.nan
    return result
