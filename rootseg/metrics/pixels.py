"""Segmentation metrics in numpy: the independent reference for the torchmetrics used in training, and
the evaluation-table writer for the numbers reported by Smith et al. 2020 and RootSAM.

Conventions (one place, so every table agrees):

- Pixels whose target is `IGNORE_INDEX` (255, unlabelled) count nowhere.
- A ratio whose denominator is zero is NaN (undefined), and tables skip NaN when averaging; except that
  when truth and prediction are both empty (tp = fp = fn = 0) precision, recall, F1, IoU and Dice are
  1.0: nothing to find and nothing claimed is a perfect answer. This is the one rule: eval's tables, the
  val/test metrics logged in training (`rootseg.tasks.metrics`, which picks the checkpoint) and the annotate
  app's val F1 all score with `scores` of `pixel_counts`. Per-image means leave out images without root
  (`summarize_counts`), which list their false positives instead. So:
  - no positive predictions but root in truth: precision NaN, recall 0, F1 = IoU = Dice = 0;
  - no root in truth but some predicted: precision 0, recall NaN, F1 = IoU = Dice = 0.
  torchmetrics' own metrics instead return `zero_division` (default 0) for every 0/0, including both-empty,
  which is why training does not use them.
- F1 is computed as 2 tp / (2 tp + fp + fn), which equals the harmonic mean of precision and recall
  where both are defined and stays defined where only one is; Dice is the same number for hard masks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from rootseg.io.arrays import IGNORE_INDEX

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


def pixel_counts(pred, target) -> dict:
    """The one confusion count: tp, fp, fn, tn of a boolean prediction against a {0, 1, 255} target, 255 (and
    any other value) counted nowhere. Written with operators numpy arrays and torch tensors share, so training's
    metrics count on the device (as unreduced 0-d sums, `rootseg.tasks.metrics`) by the rule eval counts with."""
    root, background = target == 1, target == 0
    return {
        "tp": (pred & root).sum(),
        "fp": (pred & background).sum(),
        "fn": (~pred & root).sum(),
        "tn": (~pred & background).sum(),
    }


def confusion(pred: np.ndarray, target: np.ndarray) -> dict[str, int]:
    """Pixel counts tp, fp, fn, tn of a hard prediction against a {0, 1, 255} target (255 skipped), checked."""
    pred = _check_pred(pred)
    target = _check_target(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} differs from target shape {target.shape}")
    return {key: int(value) for key, value in pixel_counts(pred, target).items()}


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

    The same as `summarize_counts` of each image's `confusion`; kept for callers holding whole arrays.
    """
    counts = [confusion(pred, target) for pred, target in zip(preds, targets, strict=True)]
    return summarize_counts(counts, ddof)


def summarize_counts(counts: Sequence[dict[str, int]], ddof: int = 1) -> tuple[dict, list[dict], dict]:
    """Pooled scores, per-image scores and their mean and sd from per-image confusion counts alone, so an
    evaluation of thousands of images keeps four integers per image instead of its pixels.

    Mean and sd (sample sd, `ddof=1`) are over images whose target holds root, skipping NaN; images
    without root have no defined recall or F1, so the summary lists them by their false-positive count.
    Returns (pooled, per_image, summary); pooled and per-image dicts hold the counts and the scores.
    """
    totals = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    per_image: list[dict] = []
    for index, image_counts in enumerate(counts):
        image_counts = {key: int(image_counts[key]) for key in totals}
        for key in totals:
            totals[key] += image_counts[key]
        has_root = image_counts["tp"] + image_counts["fn"] > 0
        per_image.append({"index": index, "has_root": has_root, **image_counts, **scores(**image_counts)})
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
