"""The numpy metrics against torchmetrics, brute force and hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_average_precision,
    binary_f1_score,
    binary_jaccard_index,
    binary_precision,
    binary_recall,
)

from rootseg.io.arrays import IGNORE_INDEX
from rootseg.metrics.patches import PooledAP, average_precision, cut_patches, patch_metrics, patch_scores
from rootseg.metrics.pixels import confusion, pooled_and_per_image, scores, segroot_soft_dice

TORCHMETRICS = {
    "f1": binary_f1_score,
    "iou": binary_jaccard_index,
    "precision": binary_precision,
    "recall": binary_recall,
    "accuracy": binary_accuracy,
}


def random_pair(rng: np.random.Generator, shape=(37, 53), root=0.2, ignore=0.1) -> tuple[np.ndarray, np.ndarray]:
    target = (rng.random(shape) < root).astype(np.uint8)
    target[rng.random(shape) < ignore] = IGNORE_INDEX
    pred = rng.random(shape) < 0.25
    return pred, target


def torch_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    p = torch.from_numpy(pred.astype(np.int64))
    t = torch.from_numpy(target.astype(np.int64))
    return {name: float(fn(p, t, ignore_index=IGNORE_INDEX)) for name, fn in TORCHMETRICS.items()}


@pytest.mark.parametrize("seed", range(5))
def test_scores_match_torchmetrics_on_random_masks(seed: int) -> None:
    pred, target = random_pair(np.random.default_rng(seed))
    ours = scores(**confusion(pred, target))
    for name, value in torch_scores(pred, target).items():
        assert ours[name] == pytest.approx(value, abs=1e-6), name
    assert ours["dice"] == ours["f1"]


def test_confusion_skips_ignored_pixels() -> None:
    pred = np.array([[1, 1, 0, 0, 1]], bool)
    target = np.array([[1, 0, 1, 0, 255]], np.uint8)
    assert confusion(pred, target) == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}


def test_empty_cases_follow_the_documented_convention() -> None:
    truth = np.array([[0, 1, 1, 0]], np.uint8)
    nothing = np.zeros((1, 4), bool)
    # empty prediction, root in truth: precision undefined, the rest 0 (torchmetrics agrees where defined)
    empty_pred = scores(**confusion(nothing, truth))
    assert math.isnan(empty_pred["precision"])
    assert empty_pred["recall"] == empty_pred["f1"] == empty_pred["iou"] == 0.0
    reference = torch_scores(nothing, truth)
    for name in ("recall", "f1", "iou", "accuracy"):
        assert empty_pred[name] == pytest.approx(reference[name])
    # empty truth, something predicted: recall undefined, precision and overlap 0
    empty_truth = scores(**confusion(np.array([[1, 0, 0, 0]], bool), np.zeros((1, 4), np.uint8)))
    assert math.isnan(empty_truth["recall"])
    assert empty_truth["precision"] == empty_truth["f1"] == empty_truth["iou"] == 0.0
    assert empty_truth["accuracy"] == 0.75
    # both empty: perfect (torchmetrics' zero_division gives 0 here; we deliberately differ)
    both = scores(**confusion(nothing, np.zeros((1, 4), np.uint8)))
    assert both == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "iou": 1.0, "dice": 1.0, "accuracy": 1.0}
    # everything ignored: accuracy undefined too
    assert math.isnan(scores(**confusion(nothing, np.full((1, 4), 255, np.uint8)))["accuracy"])


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        confusion(np.full((2, 2), 0.7), np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="0, 1 or 255"):
        confusion(np.zeros((2, 2), bool), np.full((2, 2), 7, np.uint8))
    with pytest.raises(ValueError, match="shape"):
        confusion(np.zeros((2, 2), bool), np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError):
        scores(-1, 0, 0, 0)


def test_pooled_and_per_image_summary() -> None:
    rng = np.random.default_rng(3)
    pairs = [random_pair(rng, (20 + i, 30)) for i in range(4)]
    no_root_pred = np.zeros((10, 10), bool)
    no_root_pred[:2, :3] = True
    pairs.append((no_root_pred, np.zeros((10, 10), np.uint8)))
    preds, targets = zip(*pairs)
    pooled, per_image, summary = pooled_and_per_image(preds, targets)
    # pooled = scores of the summed counts
    counts = [confusion(p, t) for p, t in pairs]
    total = {key: sum(c[key] for c in counts) for key in ("tp", "fp", "fn", "tn")}
    assert pooled == {**total, **scores(**total)}
    # torchmetrics on all pixels concatenated gives the same pooled F1
    flat_p = np.concatenate([p.ravel() for p in preds])
    flat_t = np.concatenate([t.ravel() for t in targets])
    assert pooled["f1"] == pytest.approx(torch_scores(flat_p, flat_t)["f1"], abs=1e-6)
    assert len(per_image) == 5 and [row["has_root"] for row in per_image] == [True] * 4 + [False]
    f1s = np.array([scores(**c)["f1"] for c in counts[:4]])
    assert summary["mean"]["f1"] == pytest.approx(f1s.mean())
    assert summary["sd"]["f1"] == pytest.approx(f1s.std(ddof=1))
    assert summary["n_with_root"] == 4 and summary["n"]["f1"] == 4
    assert summary["no_root"] == [{"index": 4, "fp": 6}]
    with pytest.raises(ValueError):
        pooled_and_per_image([np.zeros((2, 2), bool)], [])


def test_segroot_soft_dice() -> None:
    prob = np.array([[0.9, 0.2], [0.6, 0.0]])
    target = np.array([[1, 0], [1, 0]], np.uint8)
    expected = (2 * (0.9 + 0.6) + 1) / (1.7 + 2 + 1)
    assert segroot_soft_dice(prob, target) == pytest.approx(expected)
    batch = segroot_soft_dice(np.stack([prob, prob]), np.stack([target, np.zeros_like(target)]))
    assert batch.shape == (2,)
    assert batch[1] == pytest.approx(1 / (1.7 + 1))
    assert segroot_soft_dice(np.zeros((3, 3)), np.zeros((3, 3), np.uint8)) == 1.0


def brute_force_ap(prob: np.ndarray, truth: np.ndarray) -> float:
    """Step through every distinct threshold from the top, counting directly."""
    ap, previous_recall = 0.0, 0.0
    for threshold in np.unique(prob)[::-1]:
        predicted = prob >= threshold
        tp = np.count_nonzero(predicted & truth)
        precision = tp / np.count_nonzero(predicted)
        recall = tp / np.count_nonzero(truth)
        ap += (recall - previous_recall) * precision
        previous_recall = recall
    return ap


@pytest.mark.parametrize("seed", range(4))
def test_average_precision_matches_brute_force_and_torchmetrics(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.random(300) < 0.3
    prob = np.clip(truth * 0.3 + rng.random(300) * 0.7, 0, 1)
    prob = np.round(prob, 2)  # ties, which share one threshold
    expected = brute_force_ap(prob, truth)
    assert average_precision(prob, truth.astype(np.uint8)) == pytest.approx(expected)
    reference = binary_average_precision(torch.from_numpy(prob), torch.from_numpy(truth.astype(np.int64)))
    assert average_precision(prob, truth.astype(np.uint8)) == pytest.approx(float(reference), abs=1e-6)


def test_average_precision_edge_cases() -> None:
    assert average_precision(np.array([0.9, 0.1, 0.5]), np.array([1, 0, 255])) == 1.0
    assert math.isnan(average_precision(np.array([0.9, 0.1]), np.array([0, 0])))
    assert average_precision(np.full(4, 0.5), np.array([1, 0, 0, 0])) == pytest.approx(0.25)


def test_patches_cover_every_pixel_once() -> None:
    for height, width, size in ((2560, 2560, 512), (2550, 2273, 512), (100, 70, 64), (10, 10, 1024)):
        cover = np.zeros((height, width), np.int32)
        for window in cut_patches(height, width, size):
            cover[window] += 1
            assert window[0].stop - window[0].start <= size and window[1].stop - window[1].start <= size
        assert (cover == 1).all()
    assert len(cut_patches(2560, 2560, 512)) == 25
    assert len(cut_patches(2048, 2048, 1024)) == 4


def test_patch_metrics() -> None:
    target = np.zeros((8, 8), np.uint8)
    target[0:4, 0:2] = 1  # root only in the top-left patch
    prob = np.zeros((8, 8))
    prob[0:4, 0:1] = 0.9  # half of it found
    prob[6, 6] = 0.8  # a false positive in the bottom-right patch
    result = patch_metrics(prob, target, patch_size=4)
    assert result["n_patches"] == 4 and result["n_scored"] == 2 and result["n_ap"] == 1
    assert result["miou_per_patch"] == pytest.approx((0.5 + 0.0) / 2)
    assert result["dice_per_patch"] == pytest.approx((2 / 3 + 0.0) / 2)
    assert result["iou_pooled"] == pytest.approx(4 / 9)
    assert result["dice_pooled"] == pytest.approx(8 / 13)
    # top-left patch: the 4 found root pixels rank first (AP contribution 0.5), the rest tie at 0 (P = 0.5)
    assert result["map_per_patch"] == pytest.approx(0.5 * 1 + 0.5 * 0.5)
    assert result["ap_pooled"] == pytest.approx(brute_force_ap(prob.ravel(), target.ravel() == 1))
    rows = patch_scores(prob, target, 4)
    assert [(row["top"], row["left"]) for row in rows] == [(0, 0), (0, 4), (4, 0), (4, 4)]
    assert math.isnan(rows[1]["iou"]) and math.isnan(rows[3]["ap"])
    empty = patch_metrics(np.zeros((8, 8)), np.zeros((8, 8), np.uint8), 4)
    assert math.isnan(empty["miou_per_patch"]) and math.isnan(empty["map_per_patch"])


def test_pooled_ap_equals_the_ap_of_all_pixels_at_once() -> None:
    """PooledAP over several images (with unlabelled pixels) against brute force and torchmetrics on the
    concatenated labelled pixels: exactly on probabilities already on its grid, within 1e-4 otherwise."""
    rng = np.random.default_rng(7)
    probs, targets = [], []
    for shape in ((20, 30), (17, 11), (25, 25)):
        target = (rng.random(shape) < 0.25).astype(np.uint8)
        target[rng.random(shape) < 0.1] = IGNORE_INDEX
        prob = np.clip((target == 1) * 0.3 + rng.random(shape) * 0.7, 0, 1)
        probs.append(prob)
        targets.append(target)
    all_prob = np.concatenate([p.ravel() for p in probs])
    all_target = np.concatenate([t.ravel() for t in targets])
    labelled = all_target != IGNORE_INDEX

    on_grid = PooledAP(bins=100)  # probabilities rounded to 0.01 first: the grid loses nothing
    for prob, target in zip(probs, targets):
        on_grid.update(np.round(prob, 2), target)
    expected = brute_force_ap(np.round(all_prob[labelled], 2), all_target[labelled] == 1)
    assert on_grid.compute() == pytest.approx(expected, abs=1e-12)

    fine = PooledAP()
    for prob, target in zip(probs, targets):
        fine.update(prob, target)
    reference = binary_average_precision(
        torch.from_numpy(all_prob[labelled]), torch.from_numpy((all_target[labelled] == 1).astype(np.int64))
    )
    assert fine.compute() == pytest.approx(float(reference), abs=1e-4)
    # pooling is not the mean of the per-image APs
    per_image = np.mean([average_precision(p, t) for p, t in zip(probs, targets)])
    assert fine.compute() != pytest.approx(per_image, abs=1e-6)
    assert math.isnan(PooledAP().compute())
    no_root = PooledAP()
    no_root.update(np.full((3, 3), 0.4), np.zeros((3, 3), np.uint8))
    assert math.isnan(no_root.compute())
