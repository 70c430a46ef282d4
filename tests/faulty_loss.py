"""A U-Net loss that turns NaN once, on one DDP rank: `model.loss._target_=faulty_loss.NaNOnceOnRank` with
`tests/` on PYTHONPATH (tests/test_scale.py), to check that skipping a non-finite loss works under DDP."""

from __future__ import annotations

import torch
import torch.distributed as dist

from rootseg.tasks.losses import DiceCELoss


class NaNOnceOnRank(DiceCELoss):
    def __init__(self, rank: int = 1, call: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rank, self.call, self.calls = rank, call, 0

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = super().forward(logits, target)
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        self.calls += 1
        return loss * float("nan") if rank == self.rank and self.calls == self.call + 1 else loss
