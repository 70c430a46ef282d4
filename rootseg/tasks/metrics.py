"""The pixel metrics logged during training and the per-image confusion counts the records keep, counted and
scored by `rootseg.metrics.pixels` (one count, one rule for empty images, as eval's tables): root is
p >= threshold, unlabelled pixels (255) count nowhere, and both-empty scores 1.0. The counts are torchmetrics
states, summed across DDP ranks before scoring, so `val/f1` is the F1 of the pooled counts of every rank.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric, MetricCollection

from rootseg.metrics.pixels import pixel_counts, scores

COUNT_NAMES = ("tp", "fp", "fn", "tn")


class PixelScore(Metric):
    """One score (`rootseg.metrics.pixels.scores`) of confusion counts pooled over every update; probabilities
    are root at >= threshold, 0/1 labels are taken as they are."""

    full_state_update = False

    def __init__(self, name: str, threshold: float) -> None:
        super().__init__()
        self.name = name
        self.threshold = float(threshold)
        for key in COUNT_NAMES:
            self.add_state(key, default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        pred = preds >= self.threshold if preds.is_floating_point() else preds.bool()
        for key, value in pixel_counts(pred, target).items():
            setattr(self, key, getattr(self, key) + value)

    def compute(self) -> torch.Tensor:
        counts = {key: int(getattr(self, key)) for key in COUNT_NAMES}
        return torch.tensor(scores(**counts)[self.name], dtype=torch.float64)


def pixel_metrics(threshold: float = 0.5) -> MetricCollection:
    """Pooled over every labelled pixel of a split, as Smith et al.'s tables report them; a pixel is root when
    its probability is >= `threshold` (the module's `model.threshold`, as per-image records and eval use)."""
    names = ("precision", "recall", "f1", "iou", "accuracy")
    # the five share their states, so torchmetrics' compute groups count each batch once
    return MetricCollection({name: PixelScore(name, threshold) for name in names})


def confusion_counts(pred: torch.Tensor, target: torch.Tensor) -> dict[str, int]:
    """One image's record: `rootseg.metrics.pixels.pixel_counts` of tensors, as plain integers."""
    return {key: int(value) for key, value in pixel_counts(pred.bool(), target).items()}
