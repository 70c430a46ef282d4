"""The numpy metrics against torchmetrics, brute force and hand-worked cases."""

from __future__ import annotations

import math
import warnings

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
from rootseg.metrics.pixels import confusion, pooled_and_per_image, scores, segroot_soft_dice, summarize_counts

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


# --- cases found by mutation testing (benchmarks/mutation.py metrics; see benchmarks/RESULTS.md) ---


def test_scores_by_hand_and_each_negative_count_refused() -> None:
    # tp = fp + fn: a sum with a sign slip would read this as "both empty" and report 1.0 everywhere
    assert scores(1, 1, 0, 0) == {
        "precision": 0.5,
        "recall": 1.0,
        "f1": pytest.approx(2 / 3),
        "iou": 0.5,
        "dice": pytest.approx(2 / 3),
        "accuracy": 0.5,
    }
    assert scores(3, 2, 1, 4) == pytest.approx(
        {"precision": 0.6, "recall": 0.75, "f1": 6 / 9, "iou": 0.5, "dice": 6 / 9, "accuracy": 0.7}
    )
    for position in range(4):
        counts = [1, 1, 1, 1]
        counts[position] = -1
        with pytest.raises(ValueError, match=r"counts must be non-negative, got tp=.* tn="):
            scores(*counts)


def test_mask_dtypes_accepted_and_refused() -> None:
    pred = np.array([[1, 0, 1, 0]], bool)
    target = np.array([[1, 1, 0, 0]], np.uint8)
    expected = {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    # 0/1 integer predictions and boolean targets are masks too
    for dtype in (np.uint8, np.int64):
        assert confusion(pred.astype(dtype), target) == expected
    assert confusion(pred, target.astype(bool)) == expected
    # floats are probabilities even when they happen to be 0 and 1; an integer 2 is not a mask
    with pytest.raises(ValueError, match="boolean .* threshold probabilities first"):
        confusion(pred.astype(np.float32), target)
    with pytest.raises(ValueError, match="boolean"):
        confusion(np.array([[2, 0, 1, 0]]), target)
    with pytest.raises(ValueError, match=r"target must be an integer mask \{0, 1, 255\}, got dtype float64"):
        confusion(pred, target.astype(np.float64))
    # the message lists at most ten of the bad values
    with pytest.raises(ValueError, match=r"got \[2, 3, 4, 5, 6, 7, 8, 9, 10, 11\]$"):
        confusion(np.zeros((1, 12), bool), np.arange(2, 14, dtype=np.uint8)[None])


def test_summary_counts_default_ddof_single_root_pixel_and_names() -> None:
    counts = [
        {"tp": 3, "fp": 1, "fn": 0, "tn": 4},
        {"tp": 0, "fp": 0, "fn": 1, "tn": 9},  # one root pixel, missed: an image with root, F1 0
        {"tp": 2, "fp": 2, "fn": 2, "tn": 2},
        {"tp": 0, "fp": 2, "fn": 0, "tn": 8},  # no root
    ]
    f1s = np.array([6 / 7, 0.0, 0.5])
    _, per_image, summary = summarize_counts(counts)  # the default is the sample sd, as eval reports
    assert [row["has_root"] for row in per_image] == [True, True, True, False]
    assert summary["n_images"] == 4 and summary["n_with_root"] == 3
    assert summary["mean"]["f1"] == pytest.approx(f1s.mean())
    assert summary["sd"]["f1"] == pytest.approx(f1s.std(ddof=1))
    assert summary["no_root"] == [{"index": 3, "fp": 2}]
    # pooled_and_per_image passes its ddof on
    preds = [np.array([[1, 1, 0]], bool), np.array([[0, 1, 1]], bool)]
    targets = [np.array([[1, 0, 0]], np.uint8), np.array([[1, 1, 1]], np.uint8)]
    _, _, population = pooled_and_per_image(preds, targets, ddof=0)
    assert population["sd"]["f1"] == pytest.approx(np.std([2 / 3, 0.8], ddof=0))
    with pytest.raises(ValueError, match="shorter|longer"):  # zip(strict=True): no silent truncation
        pooled_and_per_image(preds, targets[:1])
    with pytest.raises(ValueError, match="^pooled_and_per_image needs at least one image$"):
        summarize_counts([])


def test_undefined_means_are_nan_without_numpy_warnings() -> None:
    """One image with root has no sample sd, an image set without root no mean, a blank image no patch
    means: NaN, without numpy's 'Degrees of freedom' or 'Mean of empty slice' warnings in eval's log."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, _, one = summarize_counts([{"tp": 1, "fp": 0, "fn": 1, "tn": 2}])
        assert one["mean"]["f1"] == pytest.approx(2 / 3) and math.isnan(one["sd"]["f1"])
        _, _, none = summarize_counts([{"tp": 0, "fp": 1, "fn": 0, "tn": 2}])
        assert math.isnan(none["mean"]["f1"]) and math.isnan(none["sd"]["f1"])
        blank = patch_metrics(np.zeros((8, 8)), np.zeros((8, 8), np.uint8), 4)
        assert math.isnan(blank["miou_per_patch"]) and math.isnan(blank["map_per_patch"])


def test_segroot_soft_dice_ignored_pixels_types_and_errors() -> None:
    prob = np.array([[0.9, 0.2], [0.6, 0.7]])
    target = np.array([[1, 0], [1, 255]], np.uint8)
    value = segroot_soft_dice(prob, target)
    assert type(value) is float  # one image, one float
    assert value == pytest.approx((2 * 1.5 + 1) / (1.7 + 2 + 1))  # the 0.7 on an unlabelled pixel counts nowhere
    # half-precision probabilities (AMP) summed over a whole image in float16 would overflow to inf
    half = np.full((300, 300), 0.9, np.float16)
    truth = np.ones((300, 300), np.uint8)
    exact = (2 * half.astype(np.float64).sum() + 1) / (half.astype(np.float64).sum() + truth.size + 1)
    assert segroot_soft_dice(half, truth) == pytest.approx(exact, rel=1e-12)
    with pytest.raises(ValueError, match=r"prob shape \(2, 2\) differs from target shape \(2, 3\)"):
        segroot_soft_dice(prob, np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match=r"expected \(H, W\) or \(N, H, W\), got shape \(4,\)"):
        segroot_soft_dice(np.zeros(4), np.zeros(4, np.uint8))


def test_average_precision_of_integer_scores_and_length_error() -> None:
    # 8-bit scores rank like the probabilities they encode (negated as uint8, 0 would rank first)
    scores_u8 = np.array([250, 10, 200, 120, 0, 90], np.uint8)
    truth = np.array([1, 0, 0, 1, 1, 0], np.uint8)
    expected = brute_force_ap(scores_u8 / 255, truth == 1)
    assert expected == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    assert average_precision(scores_u8, truth) == pytest.approx(expected)
    with pytest.raises(ValueError, match="prob has 3 values but target 2"):
        average_precision(np.zeros(3), np.zeros(2, np.uint8))


def test_pooled_ap_grid_edges() -> None:
    # one root pixel, ranked last: AP = precision at full recall = 1 / 2
    single = PooledAP(bins=100)
    single.update(np.array([0.9, 0.1]), np.array([0, 1], np.uint8))
    assert single.compute() == pytest.approx(0.5)
    # out-of-range probabilities are clipped onto the grid, half precision is widened before scaling
    prob = np.array([[-0.5, 0.25, 1.5, 0.75]])
    target = np.array([[0, 1, 1, 0]], np.uint8)
    clipped, wide, half = PooledAP(), PooledAP(), PooledAP()
    clipped.update(prob, target)
    wide.update(np.clip(prob, 0, 1), target)
    half.update(np.clip(prob, 0, 1).astype(np.float16), target)
    expected = brute_force_ap(np.clip(prob, 0, 1).ravel(), target.ravel() == 1)
    assert clipped.compute() == wide.compute() == half.compute() == pytest.approx(expected)
    # the coarsest grid: two thresholds, 0 and 1
    coarse = PooledAP(bins=1)
    coarse.update(np.array([0.2, 0.8, 0.9, 0.4]), np.array([1, 1, 0, 0], np.uint8))
    assert coarse.compute() == pytest.approx(0.5 * 0.5 + 0.5 * 0.5)
    with pytest.raises(ValueError, match="bins must be positive, got 0"):
        PooledAP(bins=0)
    with pytest.raises(ValueError, match=r"prob shape \(3,\) differs from target shape \(2,\)"):
        PooledAP(bins=4).update(np.zeros(3), np.zeros(2, np.uint8))


def test_cut_patches_of_one_pixel_and_zero_refused() -> None:
    assert cut_patches(2, 3, 1) == [(slice(r, r + 1), slice(c, c + 1)) for r in range(2) for c in range(3)]
    with pytest.raises(ValueError, match="patch_size must be positive, got 0"):
        cut_patches(2, 2, 0)


def test_patch_threshold_ties_flags_and_errors() -> None:
    target = np.zeros((4, 4), np.uint8)
    target[0, 0] = 1  # one root pixel in the top-left patch
    prob = np.zeros((4, 4))
    prob[0, 0] = 0.5  # exactly at the threshold: root (>=, the rule of Predictor.mask)
    prob[3, 3] = 0.49  # just below: background
    rows = patch_scores(prob, target, 2)  # the default threshold is 0.5
    assert [(row["has_root"], row["has_pred"]) for row in rows] == [(True, True)] + [(False, False)] * 3
    assert rows[0]["iou"] == rows[0]["dice"] == 1.0
    assert rows[0]["ap"] == 1.0 and all(math.isnan(row["ap"]) for row in rows[1:])
    result = patch_metrics(prob, target, 2)
    assert result["iou_pooled"] == 1.0 and result["miou_per_patch"] == 1.0 and result["n_scored"] == 1
    # the threshold reaches the per-patch scores: at 0.4 the 0.49 pixel becomes a false positive
    low = patch_metrics(prob, target, 2, threshold=0.4)
    assert low["n_scored"] == 2 and low["miou_per_patch"] == pytest.approx(0.5)
    assert low["iou_pooled"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"must be the same 2-D shape"):
        patch_scores(np.zeros((1, 4, 4)), np.zeros((1, 4, 4), np.uint8), 2)


def test_best_threshold_is_the_f1_maximum_of_all_pixels_at_once() -> None:
    """PooledAP.best_threshold over two images with unlabelled pixels against F1 computed from the pixels at
    every threshold; probabilities sit half a step of 1/1000 off, never within the histogram's rounding of one."""
    rng = np.random.default_rng(4)
    images = []
    for shape in ((40, 50), (30, 20)):
        target = (rng.random(shape) < 0.3).astype(np.uint8)
        target[rng.random(shape) < 0.1] = 255
        # an under-confident model: root pixels around 0.3, soil around 0.1
        prob = np.where(target == 1, rng.normal(0.3, 0.1, shape), rng.normal(0.1, 0.08, shape))
        images.append(((np.floor(np.clip(prob, 0, 0.999) * 1000) + 0.5) / 1000, target))
    pooled = PooledAP()
    for prob, target in images:
        pooled.update(prob, target)
    labelled = np.concatenate([p[t != 255] for p, t in images])
    truth = np.concatenate([t[t != 255] == 1 for _, t in images])
    f1 = {}
    for t in np.arange(1, 100) / 100:
        pred = labelled >= t
        f1[round(t, 2)] = 2 * (pred & truth).sum() / (pred.sum() + truth.sum())
    expected = max(f1, key=lambda t: (f1[t], -t))  # the lowest of equal ones
    got = pooled.best_threshold()
    assert got["threshold"] == expected and 0.1 < expected < 0.3
    assert got["f1"] == pytest.approx(f1[expected], rel=1e-12)
    pred = labelled >= expected
    assert got["precision"] == pytest.approx((pred & truth).sum() / pred.sum(), rel=1e-12)
    assert got["recall"] == pytest.approx((pred & truth).sum() / truth.sum(), rel=1e-12)
    assert got["f1"] > f1[0.5] + 0.2  # 0.5 would have cut most roots
    assert pooled.best_threshold(step=0.1)["threshold"] == max(
        (round(t, 1) for t in np.arange(1, 10) / 10), key=lambda t: (f1[t], -t)
    )


def test_best_threshold_without_root_and_at_an_exact_step() -> None:
    empty = PooledAP()
    empty.update(np.full((3, 3), 0.7), np.zeros((3, 3), np.uint8))
    assert empty.best_threshold()["f1"] == 0.0 and empty.best_threshold()["threshold"] == 0.5
    # pixels at exactly a threshold are kept (probs >= threshold): the soil pixel at 0.25 still at 0.25, the
    # root pixel at 0.5 still at 0.5 (both steps are exact multiples of the histogram's 2^-20)
    exact = PooledAP()
    exact.update(np.array([[0.5, 0.25]]), np.array([[1, 0]], np.uint8))
    best = exact.best_threshold()
    assert best["threshold"] == 0.26 and best["f1"] == 1.0
    assert exact.best_threshold(step=0.25)["threshold"] == 0.5
    for step in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match=f"step must lie strictly between 0 and 1, got {step}"):
            exact.best_threshold(step=step)
    below = PooledAP()  # a soil pixel one histogram step under 0.26 is dropped at 0.26
    below.update(np.array([[0.5, np.floor(0.26 * 2**20) / 2**20]]), np.array([[1, 0]], np.uint8))
    assert below.best_threshold()["threshold"] == 0.26
    exact.update(np.array([[0.5]]), np.array([[0]], np.uint8))  # a soil pixel at 0.5 too: nothing separates them
    assert exact.best_threshold()["f1"] == pytest.approx(2 / 3)
