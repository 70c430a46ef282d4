"""RootSAM's decoder passes on a batch of tiles, by prompt mode, with their loss and tile probabilities.

- prompted (`prompt_mode` points or mixed; the paper): one mask per root object from its clicks, plus the soil
  clicks of negative objects (empty targets). Correction clicks (`model.correction_clicks`, sam2's interactive
  training) add decoder passes, each with one more click from the previous pass's largest error; they are
  computed from the ground truth, so they belong to training only: a validation score with them would measure
  a person correcting the model, not the model.
- promptless (`prompt_mode` none or mixed; RootPainter's MobileSAM): one decoder pass per tile with no click,
  whose target is every root of the tile.

The tile probabilities that metrics score: prompted, the maximum over the tile's objects against the prompted
objects (`tile_target`: unprompted root counts nowhere); promptless, the tile's one mask against its whole mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rootseg.datamodules.rootsam import object_targets, tile_target
from rootseg.metrics.patches import patch_scores as image_patch_scores
from rootseg.models.rootsam import Embeddings
from rootseg.prompts.sampling import correction_points


def select_best(mask_logits: Tensor, iou_pred: Tensor) -> Tensor:
    """[B, N, M, H, W] logits -> [B, N, H, W]: the mask with the highest predicted IoU (SAM's choice)."""
    if mask_logits.shape[2] == 1:
        return mask_logits[:, :, 0]
    best = iou_pred.argmax(-1)[..., None, None, None].expand(-1, -1, 1, *mask_logits.shape[-2:])
    return mask_logits.gather(2, best).squeeze(2)


PATCH_SCORES = {"patch_miou": "iou", "patch_dice": "dice", "patch_map": "ap"}  # logged name -> metrics key


def patch_scores(probs: Tensor, target: Tensor, threshold: float = 0.5) -> dict[str, Tensor]:
    """Per-tile IoU, Dice and AP of root probabilities [B, H, W] against {0, 1, 255} targets [B, H, W].

    Each tile is one patch of `rootseg.metrics.patches.patch_scores`, the definition the evaluation tables use:
    IoU and Dice of `probs >= threshold` are NaN for a tile empty in both truth and prediction (nothing to
    score), AP is NaN for a tile without root in the truth; ignored (255) pixels count nowhere.
    Returns {"iou": [B], "dice": [B], "ap": [B]} float64 tensors on the CPU.
    """
    rows = [
        image_patch_scores(p, t, patch_size=max(p.shape), threshold=threshold)[0]
        for p, t in zip(probs.detach().float().cpu().numpy(), target.detach().cpu().numpy())
    ]
    return {key: torch.tensor([row[key] for row in rows], dtype=torch.float64) for key in ("iou", "dice", "ap")}


def drop_placeholders(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch without the stand-in tiles a DDP rank gets when a split has fewer tiles than ranks
    (`rootseg.datamodules.datasets.PaddedForRanks`): they count in no metric and no record."""
    flags = batch.get("placeholder")
    if flags is None or not bool(flags.any()):
        return batch
    keep = ~flags.bool()
    kept = [i for i, k in enumerate(keep.tolist()) if k]
    return {key: value[keep] if isinstance(value, Tensor) else [value[i] for i in kept] for key, value in batch.items()}


@dataclass
class TilePass:
    """One way of decoding a batch of tiles: its loss terms, tile probabilities [B, T, T] and targets [B, T, T]."""

    terms: dict[str, Tensor]
    probs: Tensor
    target: Tensor
    #: prompted only: the probabilities after the last correction click (None without correction passes)
    corrected: Tensor | None = None


def _union(logits: Tensor, iou: Tensor, valid: Tensor) -> Tensor:
    with torch.no_grad():
        probs = select_best(logits.detach(), iou.detach()).sigmoid() * valid[..., None, None]
        return probs.amax(1)


def add_correction_clicks(
    logits: Tensor, targets: Tensor, valid: Tensor, coords: Tensor, labels: Tensor, seed: int
) -> tuple[Tensor, Tensor]:
    """One more click per object at the centre of its largest error (sam2's `get_next_point`)."""
    pred = (logits.detach() > 0).cpu().numpy()
    truth = (targets == 1).cpu().numpy()
    new_xy = torch.zeros(*labels.shape[:2], 1, 2)
    new_label = torch.full((*labels.shape[:2], 1), -1, dtype=labels.dtype)
    rng = np.random.default_rng(seed)
    for b, i in zip(*np.nonzero(valid.cpu().numpy())):
        xy, label = correction_points(pred[b, i], truth[b, i], rng=rng)
        new_xy[b, i, 0], new_label[b, i, 0] = torch.from_numpy(xy[0]), int(label[0])
    return (
        torch.cat([coords, new_xy.to(coords)], dim=2),
        torch.cat([labels, new_label.to(labels.device)], dim=2),
    )


def prompted_pass(
    module: Any, batch: dict[str, Any], embeddings: Embeddings, corrections: int, seed: int = 0
) -> TilePass | None:
    """The clicked objects' masks; None when no tile of the batch has a click. The loss averages the passes
    (the first, then one per correction click); `probs` is the first pass, `corrected` the last."""
    valid = batch["valid"]
    n = int(valid.sum(1).max()) if valid.numel() else 0
    if n == 0:
        return None
    coords, labels, valid = batch["coords"][:, :n].float(), batch["labels"][:, :n], valid[:, :n]
    targets = object_targets(batch["objects"], batch["mask"], n)
    logits, iou = module.net.decode(embeddings, coords, labels, module.multimask_output)
    passes = [module.loss(logits.flatten(0, 1), iou.flatten(0, 1), targets.flatten(0, 1), valid.flatten())]
    first = _union(logits, iou, valid)
    for _ in range(corrections):
        coords, labels = add_correction_clicks(select_best(logits, iou), targets, valid, coords, labels, seed)
        logits, iou = module.net.decode(embeddings, coords, labels, multimask_output=False)
        passes.append(module.loss(logits.flatten(0, 1), iou.flatten(0, 1), targets.flatten(0, 1), valid.flatten()))
    terms = {name: torch.stack([p[name] for p in passes]).mean() for name in passes[0]}
    corrected = _union(logits, iou, valid) if corrections else None
    return TilePass(terms, first, tile_target(batch["objects"], batch["mask"]), corrected)


def promptless_pass(module: Any, batch: dict[str, Any], embeddings: Embeddings) -> TilePass:
    """Every root of each tile from one decoder pass without a click; the target is the tile's whole mask."""
    logits, iou = module.net.decode_promptless(embeddings)
    target = batch["mask"].long()
    valid = torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
    terms = module.loss(logits[:, 0], iou[:, 0], target, valid)
    with torch.no_grad():
        probs = logits.detach()[:, 0, 0].sigmoid()
    return TilePass(terms, probs, target)
