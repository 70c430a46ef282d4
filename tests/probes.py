"""Callbacks that tests add to a training run through the config (`+callbacks.<name>._target_=probes.<Class>`,
with tests/ importable, as it is under pytest): they record what a run did, or spoil it on purpose, so a test
can check a logged number against an independent computation."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import lightning as L
import torch


class KeepTestRecords(L.Callback):
    """Keeps the per-image (U-Net) or per-tile (RootSAM) confusion counts of the last test (class-level)."""

    records: list[dict] = []

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        KeepTestRecords.records = [dict(record) for record in pl_module.test_records]


def pooled_f1(records: list[dict]) -> float:
    """F1 of all records' pixels pooled: 2 tp / (2 tp + fp + fn), summed over the records."""
    tp, fp, fn = (sum(int(r[k]) for r in records) for k in ("tp", "fp", "fn"))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def mean_patch_iou(records: list[dict]) -> float:
    """Mean IoU over the records (tiles) where it is defined: tiles empty in truth and prediction are left out."""
    ious = [r["tp"] / (r["tp"] + r["fp"] + r["fn"]) for r in records if r["tp"] + r["fp"] + r["fn"]]
    return sum(ious) / len(ious)


class BatchProbe(L.Callback):
    """Records a digest of every training batch as it comes from the loader and every training loss, by epoch."""

    batches: dict[int, list[str]] = {}
    losses: dict[int, list[float]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        digest = hashlib.sha1()
        for key in sorted(batch):
            value = batch[key]
            if isinstance(value, torch.Tensor):
                digest.update(value.detach().cpu().numpy().tobytes())
        BatchProbe.batches.setdefault(trainer.current_epoch, []).append(digest.hexdigest())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        BatchProbe.losses.setdefault(trainer.current_epoch, []).append(float(loss))


class SpoilLastValidation(L.Callback):
    """Before the last epoch's validation, make the U-Net call every pixel background: that epoch's val/f1 is 0,
    below every earlier one, so the last value and the best checkpoint's differ."""

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == trainer.max_epochs - 1:
            with torch.no_grad():
                pl_module.net.head.weight.zero_()
                pl_module.net.head.bias.copy_(torch.tensor([10.0, -10.0]))


class KillAt(L.Callback):
    """SIGKILLs its own run at a chosen point: before training step `step` (a global step), or before the
    first validation batch of epoch `validation_epoch`. A kill placed by the run's own progress, not by a
    delay, lands at the same point on any machine, idle or loaded."""

    def __init__(self, step: int | None = None, validation_epoch: int | None = None) -> None:
        if (step is None) == (validation_epoch is None):
            raise ValueError("KillAt needs exactly one of step and validation_epoch")
        self.step, self.validation_epoch = step, validation_epoch

    @staticmethod
    def _kill() -> None:
        import os
        import signal

        os.kill(os.getpid(), signal.SIGKILL)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.step is not None and trainer.global_step == self.step:
            self._kill()

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if (
            self.validation_epoch is not None
            and not trainer.sanity_checking
            and trainer.current_epoch == self.validation_epoch
            and batch_idx == 0
        ):
            self._kill()


def kill_overrides(whole_run: Path, epochs: int, seed: int) -> list[str]:
    """The overrides that SIGKILL a repeat of `whole_run` (an uninterrupted run of `epochs` epochs) at a point
    drawn from `seed` after its first checkpoint and before its end: before any training step of epoch 1 or
    later, or as epoch 1's validation starts."""
    steps = int(
        torch.load(whole_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"]
    )
    per_epoch = steps // epochs
    assert per_epoch >= 1 and steps == epochs * per_epoch, f"{steps} steps in {epochs} epochs"
    points = [f"+callbacks.kill.step={s}" for s in range(per_epoch, steps)] + ["+callbacks.kill.validation_epoch=1"]
    point = random.Random(seed).choice(points)
    print(f"kill seed {seed}: SIGKILL at {point} ({per_epoch} steps per epoch)")
    return ["+callbacks.kill._target_=probes.KillAt", point]
