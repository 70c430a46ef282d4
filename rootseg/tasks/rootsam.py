"""RootSAM training task (Parth et al.): SAM 2.1, image encoder frozen, prompt encoder + mask decoder trained on
point prompts, first on 512 px tiles (stage 1), then on 1024 px tiles starting from stage 1 (stage 2).

Training, validation and test run on tiles (`rootseg.datamodules.rootsam`). `prompt_mode` says how the decoder
is trained and scored: `points` (the paper) from clicks sampled from the ground truth, `none` without any click
(every root of a tile from one decoder pass), `mixed` both on every batch, so one checkpoint serves clicks and
no clicks (`val/` is then the prompted score and `val/promptless_*` the other). The decoder passes themselves
are `rootseg.tasks.rootsam_steps`; whole images go through `rootseg.inference.rootsam`.
Frozen weights and checkpoints: `rootseg.tasks.rootsam_frozen`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from rootseg.datamodules.rootsam import PROMPT_MODES
from rootseg.models.embedding_cache import EmbeddingCache, StaleEmbeddingsError, split_embeddings, stack_embeddings
from rootseg.models.rootsam import Embeddings, RootSAM, sam_normalize
from rootseg.tasks.base import RootSegModule
from rootseg.tasks.metrics import confusion_counts, pixel_metrics
from rootseg.tasks.rootsam_frozen import FrozenWeights, apply_freezing, save_frozen_setting
from rootseg.tasks.rootsam_steps import (
    PATCH_SCORES,
    TilePass,
    drop_placeholders,
    patch_scores,
    prompted_pass,
    promptless_pass,
    select_best,
)

log = logging.getLogger(__name__)


__all__ = ["RootSAMModule", "select_best", "patch_scores"]

STAGE2_NEEDS_STAGE1 = (
    "model.init_ckpt is null, but this stage 2 run continues stage 1 (Parth et al.): pass stage 1's checkpoint, "
    "model.init_ckpt=<stage 1 run>/checkpoints/last.ckpt (the run directory of `python -m rootseg.train "
    "+experiment=rootsam_stage1 ...`; its weights are loaded, its optimizer and epoch are not). To train stage 2 "
    "from the raw SAM 2.1 weights instead, skipping stage 1, add model.allow_raw_sam=true."
)


class RootSAMModule(FrozenWeights, RootSegModule):
    """SAM 2.1 fine-tuned for roots. Hyper-parameters are documented in `conf/model/rootsam.yaml`."""

    kind = "rootsam"

    def __init__(
        self,
        net: RootSAM,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        train_image_encoder: bool = False,
        extra_frozen_patterns: Sequence[str] = (),
        multimask_output: bool = True,
        correction_clicks: int = 0,
        resize: int | None = None,
        tile: int = 512,
        grid_points_per_side: int = 16,
        prompt_batch: int = 64,
        min_predicted_iou: float = 0.8,
        min_stability: float = 0.95,
        prompt_mode: str = "points",
        corrected_metrics: bool = False,
        init_ckpt: str | None = None,
        expect_init_ckpt: bool = False,
        allow_raw_sam: bool = False,
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
        self.multimask_output = multimask_output
        self.correction_clicks = int(correction_clicks)
        self.resize, self.tile = resize, int(tile)
        self.grid_points_per_side = grid_points_per_side
        self.prompt_batch = prompt_batch
        self.min_predicted_iou = float(min_predicted_iou)
        self.min_stability = float(min_stability)
        if prompt_mode not in PROMPT_MODES:
            raise ValueError(f"model.prompt_mode must be one of {', '.join(PROMPT_MODES)}, not {prompt_mode!r}")
        self.prompt_mode = prompt_mode
        apply_freezing(net, train_image_encoder, extra_frozen_patterns, point_prompts=prompt_mode != "none")
        self.corrected_metrics = bool(corrected_metrics)
        self.expect_init_ckpt, self.allow_raw_sam = bool(expect_init_ckpt), bool(allow_raw_sam)
        self.save_frozen_weights = save_frozen_setting(net, save_frozen_weights)
        self.patch_metrics = nn.ModuleDict(
            {f"{split}_{name}": MeanMetric() for split in ("val", "test") for name in PATCH_SCORES}
        )
        # mixed: the promptless score beside the prompted one; correction clicks: val/corrected_* (never monitored)
        metrics = pixel_metrics(threshold)
        extra = {f"{s}_promptless": f"{s}/promptless_" for s in ("train", "val", "test") if prompt_mode == "mixed"}
        if self.corrected_metrics and self.correction_clicks:
            extra["val_corrected"] = "val/corrected_"
        self.extra_metrics = nn.ModuleDict({key: metrics.clone(prefix=prefix) for key, prefix in extra.items()})
        self.embedding_cache: EmbeddingCache | None = None
        self._frozen_fingerprint: str | None = None

    def setup(self, stage: str) -> None:
        """The base class loads `init_ckpt`; stage 2 without one stops unless raw SAM weights were asked for."""
        if self.expect_init_ckpt and not self.init_ckpt and stage == "fit" and not self._init_loaded:
            if not self.allow_raw_sam:
                raise ValueError(STAGE2_NEEDS_STAGE1)
            log.warning("model.allow_raw_sam=true: this stage 2 run starts from the SAM weights, NOT from stage 1")
            self._init_loaded = True
        super().setup(stage)

    # -- embeddings --------------------------------------------------------------------------------
    def enable_embedding_cache(self, cache_dir: str | Path) -> EmbeddingCache:
        """Cache the encoder's embeddings under `cache_dir` (keyed by the current encoder weights); refused
        when a weight that feeds them trains (`check_cacheable`)."""
        self.check_cacheable()
        self.embedding_cache = EmbeddingCache(cache_dir, self.net.encoder_fingerprint())
        return self.embedding_cache

    def check_cacheable(self) -> None:
        """Raise StaleEmbeddingsError when `encode` uses a trainable weight: cached features would go stale."""
        trainable = self.net.trainable_in_encode()
        if trainable:
            raise StaleEmbeddingsError(
                f"data.cache_embeddings=true, but {len(trainable)} weights that compute the cached embeddings train "
                f"({', '.join(trainable[:3])}{', ...' if len(trainable) > 3 else ''}), so cached features would go "
                "stale. Set data.cache_embeddings=false, or freeze them: model.train_image_encoder=false, and "
                "model.net.project_high_res_in_decode=true for the high-res projections to train in the decoder."
            )

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
        self.check_cacheable()  # never serve features of weights that have changed since
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

    # -- training and tile evaluation --------------------------------------------------------------
    def _step(self, batch: dict[str, Any], split: str = "train") -> tuple[TilePass | None, TilePass | None] | None:
        """The prompted and the promptless pass of a batch, as `prompt_mode` asks (None: no pass had anything
        to decode). Correction clicks only in training: they are computed from the ground truth."""
        embeddings = None
        prompted = promptless = None
        if self.prompt_mode != "none" and bool(batch["valid"].any()):
            embeddings = self.embeddings(batch["image"])
            scored_too = split == "val" and self.corrected_metrics  # val/corrected_*, never the monitored metric
            corrections = self.correction_clicks if split == "train" or scored_too else 0
            prompted = prompted_pass(self, batch, embeddings, corrections, seed=int(self.global_step))
        if self.prompt_mode != "points":
            embeddings = embeddings if embeddings is not None else self.embeddings(batch["image"])
            promptless = promptless_pass(self, batch, embeddings)
        if prompted is None and promptless is None:
            return None
        return prompted, promptless

    @staticmethod
    def _loss_terms(prompted: TilePass | None, promptless: TilePass | None) -> dict[str, Tensor]:
        """Loss terms summed over the passes that ran (mixed: clicks and no clicks weigh alike)."""
        passes = [p.terms for p in (prompted, promptless) if p is not None]
        return {name: torch.stack([terms[name] for terms in passes]).sum() for name in passes[0]}

    def _main(self, prompted: TilePass | None, promptless: TilePass | None) -> TilePass | None:
        """The pass the split's metrics (and the monitored val/f1) score: prompted unless prompt_mode is none."""
        return promptless if self.prompt_mode == "none" else prompted

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        out = self._step(batch, "train")
        if out is None:
            return None  # no prompt in the whole batch: nothing to learn
        prompted, promptless = out
        terms = self._loss_terms(prompted, promptless)
        batch_size = batch["image"].shape[0]
        self.log("train/loss", terms["loss"], on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        logged = {f"train/loss_{k}": v for k, v in terms.items() if k != "loss"}
        if prompted is not None and promptless is not None:
            logged |= {"train/loss_points": prompted.terms["loss"], "train/loss_promptless": promptless.terms["loss"]}
        self.log_dict(logged, on_step=False, on_epoch=True, batch_size=batch_size)
        main = self._main(prompted, promptless)
        if main is not None:
            self.train_metrics.update(main.probs.flatten(), main.target.flatten())
            self.log_dict(self.train_metrics, on_step=False, on_epoch=True, batch_size=batch_size)
        if promptless is not None and "train_promptless" in self.extra_metrics:
            self._update_logged("train_promptless", (promptless.probs, promptless.target), batch_size)
        return terms["loss"]

    def _update_logged(self, key: str, scored: tuple[Tensor, Tensor] | None | bool, batch_size: int) -> None:
        """Update one extra metric collection with (probabilities, target), when there are any, and log it:
        every rank logs every collection, so the synchronised metrics never wait for a rank that had nothing."""
        metrics = self.extra_metrics[key]
        if scored:
            metrics.update(scored[0].flatten(), scored[1].flatten())
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=batch_size)

    def _evaluate_tiles(self, batch: dict[str, Any], split: str) -> TilePass | None:
        """Score a batch of validation or test tiles; returns the pass the split's metrics scored."""
        batch = drop_placeholders(batch)
        out = self._step(batch, split) if batch["image"].shape[0] else None
        prompted, promptless = out if out is not None else (None, None)
        main = self._main(prompted, promptless)
        batch_size = max(int(batch["image"].shape[0]), 1)
        split_metrics = self.val_metrics if split == "val" else self.test_metrics
        if out is not None:
            self.log(
                f"{split}/loss", self._loss_terms(prompted, promptless)["loss"], on_epoch=True, batch_size=batch_size
            )
        if main is not None:
            split_metrics.update(main.probs.flatten(), main.target.flatten())
            self.update_patch_metrics(split, main.probs, main.target)
        for name in PATCH_SCORES:
            self.log(f"{split}/{name}", self.patch_metrics[f"{split}_{name}"], on_epoch=True, batch_size=batch_size)
        self.log_dict(split_metrics, on_step=False, on_epoch=True, prog_bar=split == "val", batch_size=batch_size)
        if f"{split}_promptless" in self.extra_metrics:
            self._update_logged(f"{split}_promptless", promptless and (promptless.probs, promptless.target), batch_size)
        if split == "val" and "val_corrected" in self.extra_metrics:
            corrected = prompted and prompted.corrected is not None and (prompted.corrected, prompted.target)
            self._update_logged("val_corrected", corrected, batch_size)
        return main

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
        """Tiles prompted from the ground truth (fixed seeds), and/or decoded without clicks; per-tile records
        and the first tiles' overlays for the W&B dashboard."""
        main = self._evaluate_tiles(batch, "val")
        if main is None:
            return
        batch = drop_placeholders(batch)
        for index, (name, probs, truth) in enumerate(zip(batch["name"], main.probs, main.target)):
            pred = probs >= self.threshold
            self.val_records.append({"name": name, **confusion_counts(pred, truth)})
            if len(self.val_examples) < self.keep_val_examples:
                image = batch["image"][index].permute(1, 2, 0).cpu().numpy()
                self.val_examples.append(
                    {"name": name, "image": image, "pred": pred.cpu().numpy(), "target": truth.cpu().numpy()}
                )

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        main = self._evaluate_tiles(batch, "test")
        if main is None:
            return
        batch = drop_placeholders(batch)
        for name, probs, truth in zip(batch["name"], main.probs, main.target):
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
