"""One plain line per epoch (metrics and time), readable in SLURM logs and CI where no progress bar is."""

from __future__ import annotations

import time

import lightning as L


class EpochSummary(L.Callback):
    """Printed at the end of the training epoch, after its validation: the epoch's own train loss (at the
    end of validation it is not aggregated yet, and the previous epoch's would show) and, when validation
    ran in this epoch, its scores (not the last ones again in epochs that skip validation)."""

    def __init__(self, keys: tuple[str, ...] = ("train/loss_epoch", "val/f1", "val/precision", "val/recall")):
        self.keys = keys
        self._start = 0.0
        self._validated_epoch = -1

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated_epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        validated = self._validated_epoch == trainer.current_epoch
        keys = [k for k in self.keys if k in metrics and (validated or not k.startswith("val/"))]
        shown = "  ".join(f"{k}={float(metrics[k]):.4f}" for k in keys)
        elapsed = time.perf_counter() - self._start
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  {shown}  ({elapsed:.0f} s)", flush=True)
