"""Training losses. U-Net: Smith et al. 2020 Dice + 0.3 CE. RootSAM: sam2's focal + Dice + IoU-head L1."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rootseg.io.arrays import IGNORE_INDEX


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


class SAMLoss(nn.Module):
    """SAM 2's mask loss (sam2 `training/loss_fns.py`, `MultiStepMultiMasksAndIous`) for one prompt step.

    Per object: sigmoid focal loss (mean over pixels) x `focal_weight` + soft Dice x `dice_weight` +
    IoU-head error x `iou_weight`. With several masks per prompt (M = 3), only the mask with the lowest
    weighted focal + Dice is back-propagated for the mask terms (SAM's ambiguity handling); the IoU head is
    trained on all M masks when `supervise_all_iou` (sam2.1's fine-tuning config) or on the best one only.
    The IoU target is the IoU of the thresholded (logit > 0) mask with the target, without gradient.
    Defaults are sam2.1's: 20 / 1 / 1, alpha 0.25, gamma 2, L1 IoU loss, all IoUs supervised.

    `iou_use_bce_loss` (not sam2's) trains the IoU head with binary cross-entropy against the IoU instead. sam2.1's
    head ends in a sigmoid; trained from scratch with L1, the many IoU-0 targets of negative objects and empty
    tiles drive it into saturation, where L1's push through the sigmoid vanishes and the head predicts ~0 for
    every mask (the rootsam_modes study). Cross-entropy's gradient on the pre-sigmoid value is (prediction -
    IoU): it never vanishes, and the head regresses the mean IoU rather than L1's median.

    Each term is averaged over objects (sam2 divides sums by the number of objects). `target` pixels equal
    to `ignore_index` (unlabelled) count in no term; `valid` [N] drops padded objects altogether.
    sam2's object-score term is not included. A negative object (a soil click, `data.negative_objects`) has an
    empty target: its IoU target is 0 whatever the mask (sam2's count), which teaches the head to score soil
    clicks low, as the grid's filter (`min_predicted_iou`) needs (the small SAM of experiments/rootsam_modes did
    not learn it).
    """

    def __init__(
        self,
        focal_weight: float = 20.0,
        dice_weight: float = 1.0,
        iou_weight: float = 1.0,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        iou_use_l1_loss: bool = True,
        supervise_all_iou: bool = True,
        ignore_index: int = IGNORE_INDEX,
        iou_use_bce_loss: bool = False,
    ) -> None:
        super().__init__()
        self.focal_weight = focal_weight
        self.dice_weight = dice_weight
        self.iou_weight = iou_weight
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.iou_use_l1_loss = iou_use_l1_loss
        self.iou_use_bce_loss = iou_use_bce_loss
        self.supervise_all_iou = supervise_all_iou
        self.ignore_index = ignore_index

    def forward(
        self,
        mask_logits: torch.Tensor,
        iou_pred: torch.Tensor,
        target: torch.Tensor,
        valid: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """mask_logits [N, M, H, W], iou_pred [N, M], target [N, H, W] in {0, 1, ignore_index}; valid [N].

        Returns {"loss", "focal", "dice", "iou"} (scalars; "loss" is the weighted sum).
        """
        if mask_logits.dim() != 4 or iou_pred.shape != mask_logits.shape[:2]:
            raise ValueError(
                f"expected mask_logits [N, M, H, W] and iou_pred [N, M], got {tuple(mask_logits.shape)} "
                f"and {tuple(iou_pred.shape)}"
            )
        if target.shape != (mask_logits.shape[0], *mask_logits.shape[2:]):
            raise ValueError(f"target {tuple(target.shape)} does not match mask_logits {tuple(mask_logits.shape)}")
        logits = mask_logits.float().flatten(2)  # [N, M, P]
        labelled = (target != self.ignore_index).flatten(1)[:, None].float()  # [N, 1, P]
        truth = (target == 1).flatten(1)[:, None].float()  # [N, 1, P]
        truth_m = truth.expand_as(logits)
        n_pixels = labelled.sum(-1).clamp_min(1)  # [N, 1]

        prob = logits.sigmoid()
        ce = F.binary_cross_entropy_with_logits(logits, truth_m, reduction="none")
        p_t = prob * truth + (1 - prob) * (1 - truth)
        focal = ce * (1 - p_t) ** self.focal_gamma
        if self.focal_alpha >= 0:
            focal = focal * (self.focal_alpha * truth + (1 - self.focal_alpha) * (1 - truth))
        focal = (focal * labelled).sum(-1) / n_pixels  # [N, M]

        prob_l = prob * labelled
        dice = 1 - (2 * (prob_l * truth).sum(-1) + 1) / (prob_l.sum(-1) + (truth * labelled).sum(-1) + 1)

        with torch.no_grad():
            hard = (logits > 0) & labelled.bool()
            gt = truth.bool() & labelled.bool()
            actual_iou = (hard & gt).sum(-1).float() / (hard | gt).sum(-1).float().clamp_min(1)
        iou_err = self._iou_error(iou_pred.float(), actual_iou)  # [N, M]

        if logits.shape[1] > 1:
            best = torch.argmin(self.focal_weight * focal + self.dice_weight * dice, dim=1)
            rows = torch.arange(logits.shape[0], device=logits.device)
            focal_o, dice_o = focal[rows, best], dice[rows, best]
            iou_o = iou_err.mean(1) if self.supervise_all_iou else iou_err[rows, best]
        else:
            focal_o, dice_o, iou_o = focal[:, 0], dice[:, 0], iou_err[:, 0]

        weight = torch.ones_like(focal_o) if valid is None else valid.to(focal_o.device).float()
        count = weight.sum().clamp_min(1)
        terms = {
            name: (value * weight).sum() / count
            for name, value in (("focal", focal_o), ("dice", dice_o), ("iou", iou_o))
        }
        loss = self.focal_weight * terms["focal"] + self.dice_weight * terms["dice"] + self.iou_weight * terms["iou"]
        return {"loss": loss, **terms}

    def _iou_error(self, iou_pred: torch.Tensor, actual_iou: torch.Tensor) -> torch.Tensor:
        if not self.iou_use_bce_loss:
            iou_fn = F.l1_loss if self.iou_use_l1_loss else F.mse_loss
            return iou_fn(iou_pred, actual_iou, reduction="none")
        if iou_pred.numel() and (iou_pred.min() < 0 or iou_pred.max() > 1):
            raise ValueError(
                "iou_use_bce_loss needs IoU predictions in [0, 1], as the IoU head gives them with sam2.1's "
                f"iou_prediction_use_sigmoid; got values in [{iou_pred.min().item():.3g}, "
                f"{iou_pred.max().item():.3g}]: use the L1 or MSE IoU loss for this network"
            )
        return F.binary_cross_entropy(iou_pred, actual_iou, reduction="none")
