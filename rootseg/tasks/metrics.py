"""The pixel metrics logged during training (torchmetrics, synchronised across DDP ranks) and the per-image
confusion counts the records keep. Root is p >= threshold everywhere, as `rootseg.metrics.pixels` counts.
"""

from __future__ import annotations

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryF1Score,
    BinaryJaccardIndex,
    BinaryPrecision,
    BinaryRecall,
)

from rootseg.io.arrays import IGNORE_INDEX


class PixelMetrics(MetricCollection):
    """torchmetrics' binary metrics count a pixel as root when p > threshold; rootseg's rule everywhere else
    (eval, predict, the per-image records) is p >= threshold. This collection binarises with >= itself and
    hands the metrics 0/1 labels, which they take as they are, so val/f1 (which picks the checkpoint) and
    eval's F1 agree on pixels exactly at the threshold."""

    def __init__(self, metrics: dict, threshold: float, **kwargs) -> None:
        super().__init__(metrics, **kwargs)
        self.threshold = float(threshold)

    def _labels(self, preds: torch.Tensor) -> torch.Tensor:
        return (preds >= self.threshold).to(torch.uint8) if preds.is_floating_point() else preds

    def update(self, preds: torch.Tensor, target: torch.Tensor, *args, **kwargs) -> None:
        super().update(self._labels(preds), target, *args, **kwargs)

    def forward(self, preds: torch.Tensor, target: torch.Tensor, *args, **kwargs) -> dict:
        return super().forward(self._labels(preds), target, *args, **kwargs)


def pixel_metrics(threshold: float = 0.5) -> MetricCollection:
    """Pooled over every labelled pixel of a split, as Smith et al.'s tables report them; a pixel is root when
    its probability is >= `threshold` (the module's `model.threshold`, as per-image records and eval use)."""
    # validate_args=False: the inputs are rootseg's own 0/1 labels and {0, 1, IGNORE_INDEX} masks; torchmetrics'
    # checks ran torch.unique over every batch's pixels, ~1/6 of a tiny U-Net's CPU training step
    kwargs = {"ignore_index": IGNORE_INDEX, "validate_args": False}
    return PixelMetrics(
        {
            "precision": BinaryPrecision(**kwargs),
            "recall": BinaryRecall(**kwargs),
            "f1": BinaryF1Score(**kwargs),
            "iou": BinaryJaccardIndex(**kwargs),
            "accuracy": BinaryAccuracy(**kwargs),
        },
        threshold,
    )


def confusion_counts(pred: torch.Tensor, target: torch.Tensor) -> dict[str, int]:
    valid = target != IGNORE_INDEX
    truth = (target == 1) & valid
    pred = pred.bool() & valid
    return {
        "tp": int((pred & truth).sum()),
        "fp": int((pred & ~truth & valid).sum()),
        "fn": int((~pred & truth).sum()),
        "tn": int((~pred & ~truth & valid).sum()),
    }
