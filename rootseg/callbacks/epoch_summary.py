"""One plain line per epoch (metrics and time), readable in SLURM logs and CI where no progress bar is."""

from __future__ import annotations

import time

import lightning as L


class EpochSummary(L.Callback):
    def __init__(self, keys: tuple[str, ...] = ("train/loss_epoch", "val/f1", "val/precision", "val/recall")):
        self.keys = keys
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        shown = "  ".join(f"{k}={float(metrics[k]):.4f}" for k in self.keys if k in metrics)
        elapsed = time.perf_counter() - self._start
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  {shown}  ({elapsed:.0f} s)", flush=True)
