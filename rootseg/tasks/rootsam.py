"""RootSAM training task (Parth et al.): SAM 2.1, image encoder frozen, prompt encoder + mask decoder trained on
point prompts, first on 512 px tiles (stage 1), then on 1024 px tiles starting from stage 1 (stage 2).

Training, validation and test run on tiles with prompts sampled from the ground truth
(`rootseg.datamodules.rootsam`); the metrics compare the union of the predicted object masks with the tile's
prompted root (root that got no prompt is ignored, see `tile_target`). Whole images without prompts go
through `predict_probs`: a grid of clicks per tile, or clicks on the skeleton of a U-Net probability map.

Checkpoints: the frozen weights (the ~210 M-parameter Hiera-L encoder) are left out of every checkpoint when
they come from Meta's file (`model.net.ckpt_path`), which is reloaded when the model is rebuilt; a fingerprint
stored in the checkpoint proves it is the same file. With random weights (no ckpt_path) they are stored.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from rootseg.datamodules.prompts import correction_points
from rootseg.datamodules.rootsam import object_targets, tile_target
from rootseg.metrics.patches import patch_scores as image_patch_scores
from rootseg.models.embedding_cache import EmbeddingCache, encoder_fingerprint, split_embeddings, stack_embeddings
from rootseg.models.freezing import freeze_by_patterns, freeze_rootsam
from rootseg.models.rootsam import Embeddings, RootSAM, sam_normalize
from rootseg.tasks.base import RootSegModule
from rootseg.tasks.checkpoints import CheckpointLoadError
from rootseg.tasks.metrics import confusion_counts

log = logging.getLogger(__name__)


RANDOM_WEIGHTS_WARNING = (
    "model.net.ckpt_path is null: SAM 2.1 ({config}) has RANDOM weights. The pipeline runs, but accuracy "
    "means nothing. Give Meta's checkpoint: model.net.ckpt_path=/path/to/sam2.1_hiera_large.pt"
)


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


def _freeze(net: RootSAM, frozen: Sequence[str] | None, trainable: Sequence[str] | None) -> None:
    """The paper's freezing (image encoder frozen) unless name patterns say otherwise."""
    if frozen is None and trainable is None:
        summary = freeze_rootsam(net)
    else:
        summary = freeze_by_patterns(net, list(frozen or ()), trainable and list(trainable))
        net.train(net.training)  # RootSAM.train keeps a frozen encoder in eval mode
    log.info("RootSAM freezing: %s", summary)
    if summary.trainable == 0:
        raise ValueError("the freezing patterns leave no parameter trainable")


def _save_frozen(net: RootSAM, setting: bool | str) -> bool:
    """Whether checkpoints carry the frozen weights: only when Meta's file cannot give them back (auto)."""
    sam_ckpt = getattr(net, "ckpt_path", None)
    if sam_ckpt is None:
        log.warning(RANDOM_WEIGHTS_WARNING.format(config=getattr(net, "config_name", "?")))
    if setting == "auto":
        return sam_ckpt is None
    if not isinstance(setting, bool):
        raise ValueError(f"model.save_frozen_weights must be auto, true or false, not {setting!r}")
    if not setting and sam_ckpt is None:
        raise ValueError(
            "model.save_frozen_weights=false needs model.net.ckpt_path: without Meta's file the frozen "
            "weights could not be restored from a checkpoint"
        )
    return setting


class RootSAMModule(RootSegModule):
    """SAM 2.1 fine-tuned for roots. Hyper-parameters are documented in `conf/model/rootsam.yaml`."""

    kind = "rootsam"

    def __init__(
        self,
        net: RootSAM,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        frozen_patterns: Sequence[str] | None = None,
        trainable_patterns: Sequence[str] | None = None,
        multimask_output: bool = True,
        correction_clicks: int = 0,
        resize: int | None = None,
        tile: int = 512,
        grid_points_per_side: int = 16,
        prompt_batch: int = 64,
        min_predicted_iou: float = 0.0,
        init_ckpt: str | None = None,
        expect_init_ckpt: bool = False,
        save_frozen_weights: bool | str = "auto",
        threshold: float = 0.5,
    ) -> None:
        super().__init__(
            optimizer=optimizer,
            scheduler=scheduler,
            scheduler_interval=scheduler_interval,
            threshold=threshold,
            init_ckpt=init_ckpt,
        )
        self.net = net
        self.loss = loss
        _freeze(net, frozen_patterns, trainable_patterns)
        self.multimask_output = multimask_output
        self.correction_clicks = int(correction_clicks)
        self.resize, self.tile = resize, int(tile)
        self.grid_points_per_side = grid_points_per_side
        self.prompt_batch = prompt_batch
        self.min_predicted_iou = min_predicted_iou
        self.expect_init_ckpt = expect_init_ckpt
        self.save_frozen_weights = _save_frozen(net, save_frozen_weights)
        self.patch_metrics = nn.ModuleDict(
            {f"{split}_{name}": MeanMetric() for split in ("val", "test") for name in PATCH_SCORES}
        )
        self.embedding_cache: EmbeddingCache | None = None
        self._frozen_fingerprint: str | None = None

    # -- frozen weights ----------------------------------------------------------------------------
    def frozen_keys(self) -> set[str]:
        """state_dict keys of the frozen parameters (they never change, so checkpoints may omit them)."""
        return {f"net.{name}" for name, p in self.net.named_parameters() if not p.requires_grad}

    def frozen_fingerprint(self) -> str:
        """sha256 of the frozen weights: proves that a reloaded SAM file is the one a checkpoint was trained on."""
        if self._frozen_fingerprint is None:
            params = dict(self.named_parameters())
            self._frozen_fingerprint = encoder_fingerprint({k: params[k] for k in sorted(self.frozen_keys())})
        return self._frozen_fingerprint

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.save_frozen_weights:
            return
        frozen = self.frozen_keys()
        state = checkpoint["state_dict"]
        for key in frozen:
            state.pop(key, None)
        checkpoint["rootseg"]["frozen_omitted"] = {
            "count": len(frozen),
            "fingerprint": self.frozen_fingerprint(),
            "sam_checkpoint": self.net.ckpt_path,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Put back the frozen weights a checkpoint left out (from model.net.ckpt_path), so loading is strict.

        Called by Lightning before it loads a state dict, and by `rootseg.tasks.checkpoints` (eval, init_ckpt).
        """
        self._frozen_fingerprint = None
        state = checkpoint["state_dict"]
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        if not missing:
            return
        frozen = self.frozen_keys()
        other = [k for k in missing if k not in frozen]
        if other:
            raise CheckpointLoadError(
                f"the checkpoint lacks {len(other)} weights that are not frozen ({', '.join(other[:4])}"
                f"{', ...' if len(other) > 4 else ''}): was it trained with other freezing patterns?"
            )
        omitted = (checkpoint.get("rootseg") or {}).get("frozen_omitted") or {}
        if self.net.ckpt_path is None:
            raise CheckpointLoadError(
                f"the checkpoint leaves out {len(missing)} frozen SAM weights, to be read from Meta's file "
                f"({omitted.get('sam_checkpoint')}), but model.net.ckpt_path is null"
            )
        if omitted.get("fingerprint") and omitted["fingerprint"] != self.frozen_fingerprint():
            raise CheckpointLoadError(
                f"model.net.ckpt_path={self.net.ckpt_path} holds other frozen weights than the SAM file this "
                f"checkpoint was trained on ({omitted.get('sam_checkpoint')})"
            )
        state.update({k: own[k] for k in missing})

    def setup(self, stage: str) -> None:
        """The base class loads `init_ckpt`; stage 2 without one says loudly that it skips stage 1."""
        if self.init_ckpt:
            super().setup(stage)
        elif self.expect_init_ckpt and not self.init_ckpt and stage == "fit" and not self._init_loaded:
            message = (
                "\n" + "!" * 100 + "\nmodel.init_ckpt is null: this stage 2 run starts from the SAM checkpoint, NOT "
                "from stage 1. Pass model.init_ckpt=<stage 1 run>/checkpoints/last.ckpt to follow the paper.\n"
                + "!"
                * 100
            )
            log.warning(message)
            warnings.warn(message, stacklevel=2)
            self._init_loaded = True

    # -- embeddings --------------------------------------------------------------------------------
    def enable_embedding_cache(self, cache_dir: str | Path) -> EmbeddingCache | None:
        """Cache frozen-encoder embeddings under `cache_dir` (keyed by the current encoder weights)."""
        if not self.net.encoder_frozen:
            log.warning("data.cache_embeddings ignored: the image encoder trains, its embeddings change")
            self.embedding_cache = None
            return None
        self.embedding_cache = EmbeddingCache(cache_dir, self.net.encoder_fingerprint())
        return self.embedding_cache

    def _attach_datamodule_cache(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None and getattr(datamodule, "cache_embeddings", False):
            self.enable_embedding_cache(datamodule.cache_dir)

    def on_fit_start(self) -> None:
        self._attach_datamodule_cache()

    def on_test_start(self) -> None:
        self._attach_datamodule_cache()

    def on_validation_start(self) -> None:
        if self.embedding_cache is None:
            self._attach_datamodule_cache()

    def embeddings(self, images: Tensor) -> Embeddings:
        """Encoder features of uint8 tiles [B, 3, T, T], from the embedding cache when one is attached."""
        cache = self.embedding_cache
        if cache is None:
            return self.net.encode(sam_normalize(images))
        pixels = images.detach().cpu()
        keys = [cache.key(pixels[i], what="rootsam-tile") for i in range(len(pixels))]
        found: list[dict[str, Any] | None] = [cache.get(key, device=images.device) for key in keys]
        missing = [i for i, item in enumerate(found) if item is None]
        if missing:
            fresh = self.net.encode(sam_normalize(images[missing]))
            for i, item in zip(missing, split_embeddings(fresh)):
                cache.put(keys[i], item)
                found[i] = item
        return stack_embeddings(found)  # type: ignore[arg-type]

    # -- training and prompted evaluation ----------------------------------------------------------
    def _step(self, batch: dict[str, Any]) -> tuple[dict[str, Tensor], Tensor, Tensor] | None:
        """Loss terms, union probabilities [B, T, T] and the tile targets [B, T, T] of a batch of tiles."""
        valid = batch["valid"]
        n = int(valid.sum(1).max()) if valid.numel() else 0
        if n == 0:
            return None
        coords, labels, valid = batch["coords"][:, :n].float(), batch["labels"][:, :n], valid[:, :n]
        targets = object_targets(batch["objects"], batch["mask"], n)
        embeddings = self.embeddings(batch["image"])
        logits, iou = self.net.decode(embeddings, coords, labels, self.multimask_output)
        passes = [self.loss(logits.flatten(0, 1), iou.flatten(0, 1), targets.flatten(0, 1), valid.flatten())]
        for _ in range(self.correction_clicks):
            coords, labels = self._add_correction_clicks(select_best(logits, iou), targets, valid, coords, labels)
            logits, iou = self.net.decode(embeddings, coords, labels, multimask_output=False)
            passes.append(self.loss(logits.flatten(0, 1), iou.flatten(0, 1), targets.flatten(0, 1), valid.flatten()))
        terms = {name: torch.stack([p[name] for p in passes]).mean() for name in passes[0]}
        with torch.no_grad():
            probs = select_best(logits.detach(), iou.detach()).sigmoid() * valid[..., None, None]
            union = probs.amax(1)
        return terms, union, tile_target(batch["objects"], batch["mask"])

    def _add_correction_clicks(
        self, logits: Tensor, targets: Tensor, valid: Tensor, coords: Tensor, labels: Tensor
    ) -> tuple[Tensor, Tensor]:
        """One more click per object at the centre of its largest error (sam2's `get_next_point`)."""
        pred = (logits.detach() > 0).cpu().numpy()
        truth = (targets == 1).cpu().numpy()
        new_xy = torch.zeros(*labels.shape[:2], 1, 2)
        new_label = torch.full((*labels.shape[:2], 1), -1, dtype=labels.dtype)
        rng = np.random.default_rng(int(self.global_step))
        for b, i in zip(*np.nonzero(valid.cpu().numpy())):
            xy, label = correction_points(pred[b, i], truth[b, i], rng=rng)
            new_xy[b, i, 0], new_label[b, i, 0] = torch.from_numpy(xy[0]), int(label[0])
        return (
            torch.cat([coords, new_xy.to(coords)], dim=2),
            torch.cat([labels, new_label.to(labels.device)], dim=2),
        )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        out = self._step(batch)
        if out is None:
            return None  # no prompt in the whole batch: nothing to learn
        terms, union, target = out
        batch_size = batch["image"].shape[0]
        self.train_metrics.update(union.flatten(), target.flatten())
        self.log("train/loss", terms["loss"], on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        self.log_dict(
            {f"train/loss_{k}": v for k, v in terms.items() if k != "loss"},
            on_step=False,
            on_epoch=True,
            batch_size=batch_size,
        )
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True, batch_size=batch_size)
        return terms["loss"]

    def _evaluate_tiles(self, batch: dict[str, Any], split: str) -> tuple[Tensor, Tensor] | None:
        out = self._step(batch)
        if out is None:
            return None
        terms, union, target = out
        batch_size = batch["image"].shape[0]
        split_metrics = self.val_metrics if split == "val" else self.test_metrics
        split_metrics.update(union.flatten(), target.flatten())
        self.log(f"{split}/loss", terms["loss"], on_step=False, on_epoch=True, batch_size=batch_size)
        for name in self.update_patch_metrics(split, union, target):
            metric = self.patch_metrics[f"{split}_{name}"]
            self.log(f"{split}/{name}", metric, on_step=False, on_epoch=True, batch_size=batch_size)
        self.log_dict(split_metrics, on_step=False, on_epoch=True, prog_bar=split == "val", batch_size=batch_size)
        return union, target

    def update_patch_metrics(self, split: str, union: Tensor, target: Tensor) -> list[str]:
        """Add the tiles' patch scores (`patch_scores`) to the split's means, skipping undefined (NaN) ones,
        as `rootseg.metrics.patches.patch_metrics` averages; returns the names that got a value."""
        scores = patch_scores(union, target, self.threshold)
        updated = []
        for name, key in PATCH_SCORES.items():
            values = scores[key][torch.isfinite(scores[key])]
            if values.numel():
                self.patch_metrics[f"{split}_{name}"].update(values.float().to(self.device))
                updated.append(name)
        return updated

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Prompted evaluation on tiles (prompts from the ground truth, fixed seeds), not on whole images."""
        self._evaluate_tiles(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        out = self._evaluate_tiles(batch, "test")
        if out is None:
            return
        union, target = out
        for name, probs, truth in zip(batch["name"], union, target):
            self.test_records.append({"name": name, **confusion_counts(probs >= self.threshold, truth)})
            if self.keep_test_outputs:
                self.test_outputs.append({"name": name, "probs": probs.cpu().numpy(), "target": truth.cpu().numpy()})

    # -- optimisation ------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        """As sam2's fine-tuning: no weight decay on biases and norm weights (1-D parameters)."""
        decay = [p for p in self.parameters() if p.requires_grad and p.ndim > 1]
        no_decay = [p for p in self.parameters() if p.requires_grad and p.ndim <= 1]
        groups = [{"params": decay}] + ([{"params": no_decay, "weight_decay": 0.0}] if no_decay else [])
        optimizer = self.optimizer_factory(params=groups)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval}}
