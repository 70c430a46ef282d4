"""W&B dashboard extras: a table of per-image validation results and overlays of predictions (false
positives red, false negatives green) every N epochs, and the best checkpoint as a model artifact (also
offline, where WandbLogger's own `log_model` refuses). Does nothing unless a WandbLogger is attached.

Under DDP each rank validates its own share of the images (UnrepeatedDistributedSampler); the per-image
records and overlays of every rank are gathered to rank 0 before they are logged."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch.distributed as dist
from lightning.pytorch.loggers import WandbLogger

from rootseg.figures.overlay import overlay
from rootseg.metrics.pixels import scores


def _downscale(array: np.ndarray, longest: int) -> np.ndarray:
    step = max(1, int(np.ceil(max(array.shape[:2]) / longest)))
    return array[::step, ::step]


def gather_objects(trainer: L.Trainer, obj: Any) -> list[Any]:
    """`obj` of every rank, in rank order (a one-element list on one process). Every rank must call it."""
    if trainer.world_size <= 1 or not (dist.is_available() and dist.is_initialized()):
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


class WandbDashboard(L.Callback):
    def __init__(self, every_n_epochs: int = 5, num_images: int = 4, max_side: int = 1024) -> None:
        self.every_n_epochs = every_n_epochs
        self.num_images = num_images
        self.max_side = max_side

    @staticmethod
    def _logger(trainer: L.Trainer) -> WandbLogger | None:
        return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)

    def _due(self, trainer: L.Trainer) -> bool:
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0 or trainer.current_epoch + 1 == trainer.max_epochs

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._logger(trainer) is not None and not trainer.sanity_checking and self._due(trainer):
            pl_module.keep_val_examples = self.num_images
        else:
            pl_module.keep_val_examples = 0

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = self._logger(trainer)
        if logger is None or trainer.sanity_checking or not self._due(trainer):
            return
        # every rank takes part in the gathering (each holds its own images), only rank 0 logs
        examples = [
            (ex["name"], _downscale(overlay(ex["image"], ex["pred"], ex["target"]), self.max_side))
            for ex in pl_module.val_examples
        ]
        gathered = gather_objects(trainer, (list(pl_module.val_records), examples))
        if not trainer.is_global_zero:
            return
        import wandb

        records = sorted((r for part, _ in gathered for r in part), key=lambda r: r["name"])
        examples = sorted((ex for _, part in gathered for ex in part), key=lambda ex: ex[0])[: self.num_images]
        columns = ["epoch", "name", "f1", "precision", "recall", "iou", "tp", "fp", "fn"]
        rows = []
        for record in records:
            counts = {k: record[k] for k in ("tp", "fp", "fn", "tn")}
            result = scores(**counts)
            rows.append(
                [
                    trainer.current_epoch,
                    record["name"],
                    result["f1"],
                    result["precision"],
                    result["recall"],
                    result["iou"],
                    record["tp"],
                    record["fp"],
                    record["fn"],
                ]
            )
        logger.experiment.log({"val/per_image": wandb.Table(columns=columns, data=rows)}, commit=False)
        images = [wandb.Image(image, caption=f"{name}: TP white, FP red, FN green") for name, image in examples]
        if images:
            logger.experiment.log({"val/overlays": images}, commit=False)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = self._logger(trainer)
        callback = trainer.checkpoint_callback
        if logger is None or not trainer.is_global_zero or callback is None or not callback.best_model_path:
            return
        import wandb

        artifact = wandb.Artifact(
            name=f"model-{logger.experiment.id}",
            type="model",
            metadata={"val/f1": float(callback.best_model_score or float("nan"))},
        )
        artifact.add_file(callback.best_model_path, name="best.ckpt")
        logger.experiment.log_artifact(artifact, aliases=["best"])
