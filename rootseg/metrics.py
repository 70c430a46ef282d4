"""Segmentation metrics in numpy: the independent reference for the torchmetrics used in training, and
the evaluation-table writer for the numbers reported by Smith et al. 2020 and RootSAM.

Conventions (one place, so every table agrees):

- Pixels whose target is `IGNORE_INDEX` (255, unlabelled) count nowhere.
- A ratio whose denominator is zero is NaN (undefined), and tables skip NaN when averaging; except that
  when truth and prediction are both empty (tp = fp = fn = 0) precision, recall, F1, IoU and Dice are
  1.0: nothing to find and nothing claimed is a perfect answer. So:
  - no positive predictions but root in truth: precision NaN, recall 0, F1 = IoU = Dice = 0;
  - no root in truth but some predicted: precision 0, recall NaN, F1 = IoU = Dice = 0.
  torchmetrics instead returns `zero_division` (default 0) for every 0/0, including both-empty.
- F1 is computed as 2 tp / (2 tp + fp + fn), which equals the harmonic mean of precision and recall
  where both are defined and stays defined where only one is; Dice is the same number for hard masks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from rootseg.data.io import IGNORE_INDEX

__all__ = [
    "SCORE_NAMES",
    "PooledAP",
    "average_precision",
    "confusion",
    "cut_patches",
    "mean_over_images",
    "patch_metrics",
    "patch_scores",
    "pooled_and_per_image",
    "scores",
    "segroot_soft_dice",
]

SCORE_NAMES = ("precision", "recall", "f1", "iou", "dice", "accuracy")


def _check_target(target: np.ndarray) -> np.ndarray:
    target = np.asarray(target)
    if not np.issubdtype(target.dtype, np.integer) and target.dtype != bool:
        raise ValueError(f"target must be an integer mask {{0, 1, {IGNORE_INDEX}}}, got dtype {target.dtype}")
    values = np.unique(target)
    if not np.isin(values, (0, 1, IGNORE_INDEX)).all():
        raise ValueError(f"target values must be 0, 1 or {IGNORE_INDEX} (unlabelled), got {values[:10].tolist()}")
    return target


def _check_pred(pred: np.ndarray) -> np.ndarray:
    pred = np.asarray(pred)
    if pred.dtype == bool:
        return pred
    if np.issubdtype(pred.dtype, np.integer) and np.isin(np.unique(pred), (0, 1)).all():
        return pred.astype(bool)
    raise ValueError(f"pred must be a boolean (or 0/1) mask, got dtype {pred.dtype}; threshold probabilities first")


def confusion(pred: np.ndarray, target: np.ndarray) -> dict[str, int]:
    """Pixel counts tp, fp, fn, tn of a hard prediction against a {0, 1, 255} target (255 skipped)."""
    pred = _check_pred(pred)
    target = _check_target(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} differs from target shape {target.shape}")
    root = target == 1
    background = target == 0
    return {
        "tp": int(np.count_nonzero(pred & root)),
        "fp": int(np.count_nonzero(pred & background)),
        "fn": int(np.count_nonzero(~pred & root)),
        "tn": int(np.count_nonzero(~pred & background)),
    }


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def scores(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """Precision, recall, F1, IoU, Dice and accuracy from counts, with the module's NaN conventions."""
    if min(tp, fp, fn, tn) < 0:
        raise ValueError(f"counts must be non-negative, got tp={tp} fp={fp} fn={fn} tn={tn}")
    if tp + fp + fn == 0:
        overlap = {"precision": 1.0, "recall": 1.0, "f1": 1.0, "iou": 1.0, "dice": 1.0}
    else:
        f1 = 2 * tp / (2 * tp + fp + fn)
        overlap = {
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "f1": f1,
            "iou": tp / (tp + fp + fn),
            "dice": f1,
        }
    return {**overlap, "accuracy": _ratio(tp + tn, tp + fp + fn + tn)}


def pooled_and_per_image(
    preds: Iterable[np.ndarray], targets: Iterable[np.ndarray], ddof: int = 1
) -> tuple[dict, list[dict], dict]:
    """Scores on all pixels pooled, per image, and the per-image mean and sd (Smith et al. 2020 Tables 3-4).

    Mean and sd (sample sd, `ddof=1`) are over images whose target holds root, skipping NaN; images
    without root have no defined recall or F1, so the summary lists them by their false-positive count.
    Returns (pooled, per_image, summary); pooled and per-image dicts hold the counts and the scores.
    """
    totals = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    per_image: list[dict] = []
    for index, (pred, target) in enumerate(zip(preds, targets, strict=True)):
        counts = confusion(pred, target)
        for key in totals:
            totals[key] += counts[key]
        has_root = counts["tp"] + counts["fn"] > 0
        per_image.append({"index": index, "has_root": has_root, **counts, **scores(**counts)})
    if not per_image:
        raise ValueError("pooled_and_per_image needs at least one image")
    pooled = {**totals, **scores(**totals)}
    with_root = [row for row in per_image if row["has_root"]]
    summary: dict = {
        "n_images": len(per_image),
        "n_with_root": len(with_root),
        "mean": {},
        "sd": {},
        "n": {},
        "no_root": [{"index": row["index"], "fp": row["fp"]} for row in per_image if not row["has_root"]],
    }
    for name in SCORE_NAMES:
        values = np.array([row[name] for row in with_root], dtype=np.float64)
        values = values[np.isfinite(values)]
        summary["n"][name] = int(values.size)
        summary["mean"][name] = float(values.mean()) if values.size else math.nan
        summary["sd"][name] = float(values.std(ddof=ddof)) if values.size > ddof else math.nan
    return pooled, per_image, summary


def segroot_soft_dice(prob: np.ndarray, target: np.ndarray, smooth: float = 1.0) -> np.ndarray | float:
    """Soft Dice as the SegRoot code computes it: (2 sum(p t) + smooth) / (sum(p) + sum(t) + smooth).

    One value per image: a float for an (H, W) input, an array for (N, H, W). Pixels whose target is 255
    are dropped (SegRoot has none; it keeps the formula usable on partly labelled masks).
    """
    prob = np.asarray(prob, dtype=np.float64)
    target = np.asarray(target)
    if prob.shape != target.shape:
        raise ValueError(f"prob shape {prob.shape} differs from target shape {target.shape}")
    if prob.ndim not in (2, 3):
        raise ValueError(f"expected (H, W) or (N, H, W), got shape {prob.shape}")
    batch = prob.ndim == 3
    prob = prob if batch else prob[None]
    target = target if batch else target[None]
    valid = target != IGNORE_INDEX
    truth = ((target == 1) & valid).astype(np.float64)
    prob = np.where(valid, prob, 0.0)
    axes = (1, 2)
    dice = (2 * (prob * truth).sum(axes) + smooth) / (prob.sum(axes) + truth.sum(axes) + smooth)
    return dice if batch else float(dice[0])


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
