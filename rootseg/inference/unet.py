"""The U-Net on whole images: nnU-Net's sliding window (`rootseg.tiling.window`) over the module's tiles.

Default: half-tile steps with Gaussian blending; `step=tile` is Smith et al.'s non-overlapping grid (each
pixel predicted by exactly one tile, the protocol of their tables). A LazyImage (a memory-mapped TIFF) is read
tile by tile, so a gigapixel scan is never decoded whole.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from rootseg.inference.settings import GRID_STEP, InferenceSettings, autocast_enabled
from rootseg.io.images import LazyImage
from rootseg.tiling.grid import tile_count
from rootseg.tiling.window import sliding_window_probs

DEFAULT_BATCH_SIZE = 4


class UNetInference:
    """Whole-image prediction of a U-Net task module (`rootseg.tasks.unet.UNetModule`)."""

    honours: ClassVar[frozenset[str]] = frozenset({"step", "blend", "tta", "batch_size"})

    def __init__(self, module: Any, settings: InferenceSettings, device: torch.device, proposer: Any = None) -> None:
        self.module = module
        self.device = device
        tile_out = int(module.tile_out)
        if settings.step == GRID_STEP:
            self.step = tile_out
        else:
            self.step = int(settings.step) if settings.step is not None else max(tile_out // 2, 1)
        if self.step > tile_out:
            raise ValueError(
                f"step={self.step} leaves gaps between this checkpoint's {tile_out} px output tiles; "
                f"use a step <= {tile_out} (step=tile is Smith et al.'s grid)"
            )
        self.blend = settings.blend or "gaussian"
        self.tta = settings.tta
        self.batch_size = int(settings.batch_size or DEFAULT_BATCH_SIZE)
        self.autocast = autocast_enabled(settings.precision, device)

    def describe(self) -> dict[str, Any]:
        grid = self.step == self.module.tile_out
        return {
            "window": "Smith et al.'s non-overlapping grid" if grid else f"step {self.step} px, {self.blend} blending",
            "tile_in": int(self.module.tile_in),
            "tile_out": int(self.module.tile_out),
            "step": self.step,
            "blend": self.blend,
            "tta": self.tta,
        }

    def tiles(self, height: int, width: int, default: bool = False) -> int:
        """Network passes (tiles, times 4 with tta) for an image of this size; `default`: at the default step."""
        tile_out = int(self.module.tile_out)
        passes = tile_count(height, width, tile_out, max(tile_out // 2, 1) if default else self.step)
        return passes * (4 if self.tta else 1)

    def __call__(self, image: np.ndarray | LazyImage, clicks: np.ndarray | None = None) -> np.ndarray:
        probs = sliding_window_probs(
            image,
            self.module.predict_tiles,
            tile_in=int(self.module.tile_in),
            tile_out=int(self.module.tile_out),
            step=self.step,
            blend=self.blend,
            tta=self.tta,
            batch_size=self.batch_size,
            device=self.device,
            autocast=self.autocast,
            model=self.module,
        )
        return probs.numpy()
