"""Training losses. U-Net: Smith et al. 2020 Dice + 0.3 CE. RootSAM: sam2's focal + Dice + IoU-head L1."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rootseg.data.io import IGNORE_INDEX


class DiceCELoss(nn.Module):
    """Smith et al. 2020: soft Dice on the root channel pooled over the whole batch + ce_weight x CE.

    Dice is undefined for a batch without root, so such a batch gets only the (weighted) cross-entropy,
    as in RootPainter's `combined_loss`. Pixels labelled IGNORE_INDEX (unlabelled) count in neither term.
    """

    def __init__(self, ce_weight: float = 0.3, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.ce_weight = ce_weight
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """logits: (B, 2, H, W); target: (B, H, W) integer {0, 1, ignore_index}."""
        target = target.long()
        valid = target != self.ignore_index
        ce = F.cross_entropy(logits.float(), torch.where(valid, target, 0), reduction="none")
        ce = (ce * valid).sum() / valid.sum().clamp_min(1)
        root = (target == 1) & valid
        if not root.any():
            return self.ce_weight * ce
        root_prob = torch.softmax(logits.float(), dim=1)[:, 1] * valid
        intersection = (root_prob * root).sum()
        dice = 1 - 2 * intersection / (root_prob.sum() + root.sum())
        return dice + self.ce_weight * ce
