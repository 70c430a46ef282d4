"""The one-line-per-epoch summary shows each epoch's own train loss and only the validation that ran."""

from __future__ import annotations

import re

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from rootseg.callbacks.epoch_summary import EpochSummary


class LossSchedule(L.LightningModule):
    """Logs a known train loss per epoch (10 * (epoch + 1)) and val/f1 = epoch / 10."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        self.log("train/loss", 10.0 * (self.current_epoch + 1), on_step=True, on_epoch=True)
        return (self.w * 0).sum() + self.w.sum() * 0

    def validation_step(self, batch, batch_idx):
        self.log("val/f1", self.current_epoch / 10)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_each_line_holds_its_own_epochs_loss_and_fresh_validation(capsys, tmp_path):
    data = DataLoader(TensorDataset(torch.zeros(4, 1)), batch_size=2)
    trainer = L.Trainer(
        max_epochs=4,
        check_val_every_n_epoch=2,
        callbacks=[EpochSummary()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        num_sanity_val_steps=1,
    )
    trainer.fit(LossSchedule(), train_dataloaders=data, val_dataloaders=data)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/4", "2/4", "3/4", "4/4"]
    losses = [float(re.search(r"train/loss_epoch=([\d.]+)", line).group(1)) for line in lines]
    assert losses == [10.0, 20.0, 30.0, 40.0]  # not the previous epoch's
    assert ["val/f1=" in line for line in lines] == [False, True, False, True]
    assert "val/f1=0.1000" in lines[1] and "val/f1=0.3000" in lines[3]
