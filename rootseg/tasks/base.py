"""What every rootseg LightningModule shares: one metric collection per split, per-image test records,
optimizer and scheduler built from `_partial_` configs, and the run config stored in each checkpoint
so eval and predict can rebuild the model from the checkpoint alone."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torchmetrics import MetricCollection

from rootseg.tasks.metrics import confusion_counts, pixel_metrics

log = logging.getLogger(__name__)


class RootSegModule(L.LightningModule):
    """Base task: subclasses define `configure_losses`-free `training_step` and `predict_probs`."""

    #: written into checkpoints (`checkpoint["rootseg"]`) so loaders know what to build
    kind: str = "base"

    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        threshold: float = 0.5,
        nonfinite_loss: str = "skip",
        init_ckpt: str | None = None,
    ) -> None:
        super().__init__()
        if nonfinite_loss not in ("skip", "stop"):
            raise ValueError(f"model.nonfinite_loss must be 'skip' or 'stop', got {nonfinite_loss!r}")
        self.nonfinite_loss = nonfinite_loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        self.threshold = threshold
        metrics = pixel_metrics(threshold)
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.test_records: list[dict[str, Any]] = []
        self.val_records: list[dict[str, Any]] = []
        #: the first few validation images (image, prediction, target) for dashboards; see callbacks
        self.val_examples: list[dict[str, Any]] = []
        self.keep_val_examples = 0
        self.test_outputs: list[dict[str, np.ndarray]] = []
        self.keep_test_outputs = False
        #: the resolved run config; set by rootseg.train, saved into every checkpoint
        self.run_config: dict[str, Any] | None = None
        #: weights-only start (`model.init_ckpt`): loaded once in `setup`, see `load_init_checkpoint`
        self.init_ckpt = str(init_ckpt) if init_ckpt else None
        self._init_loaded = False

    # -- weights-only start ------------------------------------------------------------------------
    def load_init_checkpoint(self, path: str | Path) -> None:
        """Weights only (no optimizer, scheduler, epoch or step) from a rootseg checkpoint of this model kind."""
        from rootseg.tasks.checkpoints import load_init_weights

        load_init_weights(self, path)
        self._init_loaded = True

    def setup(self, stage: str) -> None:
        """Load `init_ckpt` once, before Lightning restores a resumed run's checkpoint (`ckpt_path`, which then
        wins: Lightning calls `setup` first and restores the checkpoint after it)."""
        if self.init_ckpt and not self._init_loaded:
            self.load_init_checkpoint(self.init_ckpt)

    # -- prediction of whole images (validation, test, predict) ------------------------------------
    def predict_probs(self, image: torch.Tensor) -> torch.Tensor:
        """(H, W, 3) uint8 image -> (H, W) root probability."""
        raise NotImplementedError

    def _evaluate_image(self, batch: dict, metrics: MetricCollection) -> tuple[torch.Tensor, torch.Tensor]:
        image, target = batch["image"][0], batch["mask"][0].long()
        probs = self.predict_probs(image).to(target.device)
        metrics.update(probs.flatten(), target.flatten())
        return probs, target

    @staticmethod
    def _placeholder(batch: dict) -> bool:
        """A DDP rank's stand-in item when a split has fewer images than ranks (data.datasets.PaddedForRanks)."""
        flag = batch.get("placeholder")
        return flag is not None and bool(flag[0])

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        if self._placeholder(batch):  # log (so this rank joins the metric sync) but count nothing
            self.log_dict(self.val_metrics, on_step=False, on_epoch=True, prog_bar=True, batch_size=1)
            return
        probs, target = self._evaluate_image(batch, self.val_metrics)
        pred = probs >= self.threshold
        self.val_records.append({"name": batch["name"][0], **confusion_counts(pred, target)})
        if len(self.val_examples) < self.keep_val_examples:
            self.val_examples.append(
                {
                    "name": batch["name"][0],
                    "image": batch["image"][0].cpu().numpy(),
                    "pred": pred.cpu().numpy(),
                    "target": target.cpu().numpy(),
                }
            )
        self.log_dict(self.val_metrics, on_step=False, on_epoch=True, prog_bar=True, batch_size=1)

    def on_validation_epoch_start(self) -> None:
        self.val_records.clear()
        self.val_examples.clear()

    def checked_loss(self, loss: torch.Tensor, batch_idx: int) -> torch.Tensor | None:
        """A NaN or infinite loss skips its batch or stops the run, as `model.nonfinite_loss` says, naming the
        step and batch either way.

        Skipping on one process returns None (Lightning then skips the optimizer step). Under DDP (world size
        > 1) Lightning refuses None, and a rank that left out its backward pass would hang the others in the
        gradient all-reduce; so the rank returns a zero loss that holds every trainable parameter: its
        gradients are all zero, the all-reduce matches across ranks, and every rank takes the same step
        (with the other ranks' gradients, averaged over all ranks). A caller tells a skipped batch from
        a real one by the result not being the loss it passed in (`UNetModule.training_step`).
        """
        if torch.isfinite(loss):
            return loss
        world = self._trainer.world_size if self._trainer is not None else 1
        rank = f"rank {self._trainer.global_rank} of {world}, " if world > 1 else ""
        where = f"{rank}epoch {self.current_epoch}, global step {self.global_step}, batch {batch_idx}"
        if self.nonfinite_loss == "stop":
            raise FloatingPointError(
                f"training loss is {loss.item()} at {where}; lower model.optimizer.lr, check the inputs of that "
                "batch, or set model.nonfinite_loss=skip to skip such batches"
            )
        how = "its gradients are zero on this rank (DDP)" if world > 1 else "batch skipped"
        log.warning("training loss is %s at %s: %s (model.nonfinite_loss=skip)", loss.item(), where, how)
        self.log("train/skipped_batches", 1.0, on_step=False, on_epoch=True, reduce_fx="sum", batch_size=1)
        if world == 1:
            return None
        return self.zero_loss()

    def zero_loss(self) -> torch.Tensor:
        """0.0, with every trainable parameter in its graph (zero gradients, finite even for non-finite weights)."""
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            return torch.zeros((), device=self.device)
        total = torch.stack([p.sum().float() for p in params]).sum() * 0.0
        return torch.nan_to_num(total, nan=0.0, posinf=0.0, neginf=0.0)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        if self._placeholder(batch):
            self.log_dict(self.test_metrics, on_step=False, on_epoch=True, batch_size=1)
            return
        probs, target = self._evaluate_image(batch, self.test_metrics)
        pred = probs >= self.threshold
        record = {"name": batch["name"][0], **confusion_counts(pred, target)}
        self.test_records.append(record)
        if self.keep_test_outputs:
            self.test_outputs.append(
                {"name": batch["name"][0], "probs": probs.cpu().numpy(), "target": target.cpu().numpy()}
            )
        self.log_dict(self.test_metrics, on_step=False, on_epoch=True, batch_size=1)

    def on_test_epoch_start(self) -> None:
        self.test_records.clear()
        self.test_outputs.clear()

    # -- optimisation ------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params=params)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval},
        }

    # -- checkpoints -------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rootseg"] = {"kind": self.kind, "config": self.run_config}
