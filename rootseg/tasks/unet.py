"""U-Net training task of Smith et al. 2020: tiles in, Dice + 0.3 CE, SGD Nesterov."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from rootseg.io.images import LazyImage
from rootseg.tasks.base import RootSegModule
from rootseg.tiling.grid import resolve_window
from rootseg.tiling.window import sliding_window_probs


class UNetModule(RootSegModule):
    kind = "unet"

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        tile_in: int = 572,
        tile_out: int = 388,
        eval_step: int | str | None = None,
        eval_blend: str | None = None,
        eval_tta: bool = False,
        eval_batch_size: int = 4,
        threshold: float = 0.5,
        nonfinite_loss: str = "skip",
        init_ckpt: str | None = None,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__(
            optimizer=optimizer,
            scheduler=scheduler,
            threshold=threshold,
            nonfinite_loss=nonfinite_loss,
            init_ckpt=init_ckpt,
        )
        # NHWC convolutions (faster with bf16 on tensor-core GPUs); inputs follow in `_layout`
        self.channels_last = bool(channels_last)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.compile_net = bool(compile)
        if self.compile_net:
            # in place (nn.Module.compile): the parameters and state_dict keys stay those of the eager net, so
            # checkpoints load either way; compiled lazily at the first call
            net.compile()
        self.net = net
        self.loss = loss
        expected = net.output_size(tile_in) if hasattr(net, "output_size") else tile_out
        if expected != tile_out:
            raise ValueError(
                f"the net maps {tile_in} px tiles to {expected} px, but tile_out={tile_out}; "
                f"set data.tile_out={expected}"
            )
        self.tile_in, self.tile_out = tile_in, tile_out
        # validation and test windows: by default eval's (half-tile steps, Gaussian blending), by the same rule
        self.eval_step, self.eval_blend = resolve_window(eval_step, eval_blend, tile_out)
        self.eval_tta = eval_tta
        self.eval_batch_size = eval_batch_size

    def _layout(self, tiles: torch.Tensor) -> torch.Tensor:
        return tiles.contiguous(memory_format=torch.channels_last) if self.channels_last else tiles

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        return self.net(self._layout(tiles))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        logits = self(batch["image"])
        raw = self.loss(logits, batch["mask"])
        loss = self.checked_loss(raw, batch_idx)
        if loss is not raw:
            return loss  # skipped: None on one process, a zero loss under DDP (see checked_loss)
        probs = torch.softmax(logits.detach().float(), dim=1)[:, 1]
        self.train_metrics.update(probs.flatten(), batch["mask"].flatten())
        batch_size = batch["image"].shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True, batch_size=batch_size)
        return loss

    def predict_tiles(self, tiles: torch.Tensor) -> torch.Tensor:
        """(B, 3, tile_in, tile_in) raw tiles -> (B, tile_out, tile_out) root probability."""
        return torch.softmax(self(tiles).float(), dim=1)[:, 1]

    def predict_probs(
        self,
        image: torch.Tensor | np.ndarray | LazyImage,
        step: int | None = None,
        blend: str | None = None,
        tta: bool | None = None,
        batch_size: int | None = None,
        autocast: bool | None = None,
    ) -> torch.Tensor:
        """(H, W, 3) uint8 image -> (H, W) root probability: the one whole-image U-Net path. Validation and test
        call it with the `model.eval_*` window; eval and predict (`rootseg.inference.unet`) with their settings,
        whose defaults are the same, so `val/f1`, `test/f1` and eval score the same masks."""
        if isinstance(image, torch.Tensor) and image.ndim == 3 and image.shape[-1] == 3:
            image = image.permute(2, 0, 1).contiguous()  # uint8 CHW: tiles are cut fast and made float per batch
        return sliding_window_probs(
            image,
            self.predict_tiles,
            tile_in=self.tile_in,
            tile_out=self.tile_out,
            step=step or self.eval_step,
            blend=blend or self.eval_blend,
            tta=self.eval_tta if tta is None else tta,
            batch_size=batch_size or self.eval_batch_size,
            device=self.device,
            autocast=autocast,
            model=self,
        )
