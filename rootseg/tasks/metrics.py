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


def pixel_metrics(threshold: float = 0.5) -> MetricCollection:
    """Pooled over every labelled pixel of a split, as Smith et al.'s tables report them; a pixel is root when
    its probability is >= `threshold` (the module's `model.threshold`, as per-image records and eval use)."""
    kwargs = {"ignore_index": IGNORE_INDEX, "threshold": float(threshold)}
    return MetricCollection(
        {
            "precision": BinaryPrecision(**kwargs),
            "recall": BinaryRecall(**kwargs),
            "f1": BinaryF1Score(**kwargs),
            "iou": BinaryJaccardIndex(**kwargs),
            "accuracy": BinaryAccuracy(**kwargs),
        }
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
