"""The metrics logged in training (val/f1 picks the checkpoint) count root as p >= threshold, as eval does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rootseg.io.arrays import IGNORE_INDEX
from rootseg.tasks.metrics import confusion_counts, pixel_metrics


def _counts_by_hand(probs: np.ndarray, target: np.ndarray, threshold: float) -> dict[str, int]:
    labelled = target != IGNORE_INDEX
    pred, truth = probs >= threshold, target == 1
    return {
        "tp": int((pred & truth & labelled).sum()),
        "fp": int((pred & ~truth & labelled).sum()),
        "fn": int((~pred & truth & labelled).sum()),
        "tn": int((~pred & ~truth & labelled).sum()),
    }


@pytest.mark.parametrize("threshold", [0.5, 0.25, 0.3])
def test_pixels_exactly_at_the_threshold_are_root_in_training_metrics(threshold):
    rng = np.random.default_rng(0)
    target = (rng.random(400) < 0.3).astype(np.int64)
    target[:20] = IGNORE_INDEX
    probs = rng.random(400).astype(np.float32)
    probs[::3] = np.float32(threshold)  # a third of the pixels tie, root and background alike
    counts = _counts_by_hand(probs, target, threshold)
    tp, fp, fn, tn = counts["tp"], counts["fp"], counts["fn"], counts["tn"]
    metrics = pixel_metrics(threshold).clone(prefix="val/")
    metrics.update(torch.from_numpy(probs), torch.from_numpy(target))
    got = {k.split("/")[1]: float(v) for k, v in metrics.compute().items()}
    assert got["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-6)
    assert got["precision"] == pytest.approx(tp / (tp + fp), abs=1e-6)
    assert got["recall"] == pytest.approx(tp / (tp + fn), abs=1e-6)
    assert got["iou"] == pytest.approx(tp / (tp + fp + fn), abs=1e-6)
    assert got["accuracy"] == pytest.approx((tp + tn) / (tp + fp + fn + tn), abs=1e-6)
    # the per-image records (and so eval) count the same pixels
    assert confusion_counts(torch.from_numpy(probs) >= threshold, torch.from_numpy(target)) == counts
    # and the ties matter: counting them as background (torchmetrics' own p > threshold) gives another F1
    strict = _counts_by_hand(np.nextafter(probs, np.float32(-1)), target, threshold)
    assert 2 * strict["tp"] / (2 * strict["tp"] + strict["fp"] + strict["fn"]) != pytest.approx(got["f1"], abs=1e-3)


def test_forward_and_labels_follow_the_same_rule():
    metrics = pixel_metrics(0.5)
    probs = torch.tensor([0.5, 0.5, 0.49, 0.9])
    target = torch.tensor([1, 0, 1, 1])
    step = metrics(probs, target)  # forward: this batch's values
    assert float(step["recall"]) == pytest.approx(2 / 3) and float(step["precision"]) == pytest.approx(2 / 3)
    metrics.reset()
    metrics.update(torch.tensor([1, 1, 0, 1], dtype=torch.uint8), target)  # labels are taken as they are
    assert float(metrics.compute()["f1"]) == pytest.approx(2 / 3)


#: (prediction, target) of the empty cases: both empty, only truth, only prediction, nothing labelled
EMPTY_CASES = {
    "both empty": ([0, 0, 0, 0], [0, 0, 0, 0]),
    "nothing predicted": ([0, 0, 0, 0], [0, 1, 1, 0]),
    "no root in truth": ([1, 0, 0, 0], [0, 0, 0, 0]),
    "nothing labelled": ([1, 0, 0, 1], [255, 255, 255, 255]),
}


@pytest.mark.parametrize("case", sorted(EMPTY_CASES))
def test_logged_scores_of_empty_images_follow_evals_rule(case):
    """val/f1 and test/f1 score the empty cases as eval's tables do (`rootseg.metrics.pixels.scores`, where
    both empty is 1.0 and an undefined ratio NaN), not as torchmetrics' zero_division (0.0)."""
    from rootseg.metrics.pixels import confusion, scores

    pred, target = (np.array(values, np.uint8) for values in EMPTY_CASES[case])
    expected = scores(**confusion(pred.astype(bool), target))
    metrics = pixel_metrics(0.5).clone(prefix="test/")
    metrics.update(torch.from_numpy(pred.astype(np.float32)), torch.from_numpy(target.astype(np.int64)))
    got = {k.split("/")[1]: float(v) for k, v in metrics.compute().items()}
    assert set(got) == {"precision", "recall", "f1", "iou", "accuracy"}
    for name, value in got.items():
        assert value == pytest.approx(expected[name], nan_ok=True), name
    if case == "both empty":
        assert got["f1"] == 1.0
