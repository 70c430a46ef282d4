"""The U-Net on whole images: the task module's own window (`UNetModule.predict_probs`, nnU-Net's sliding window
of `rootseg.tiling.window`), with the settings of eval and predict.

Default: half-tile steps with Gaussian blending (`rootseg.tiling.grid.resolve_window`, the rule validation and
test use too, so `val/f1` and eval score the same masks); `step=tile` is Smith et al.'s non-overlapping grid
(each pixel predicted by exactly one tile, the protocol of their tables). A LazyImage (a memory-mapped TIFF) is
read tile by tile, so a gigapixel scan is never decoded whole.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from rootseg.inference.settings import InferenceSettings, autocast_enabled
from rootseg.io.images import LazyImage
from rootseg.tiling.grid import resolve_window, tile_count

DEFAULT_BATCH_SIZE = 4


class UNetInference:
    """Whole-image prediction of a U-Net task module (`rootseg.tasks.unet.UNetModule`)."""

    honours: ClassVar[frozenset[str]] = frozenset({"step", "blend", "tta", "batch_size"})

    def __init__(self, module: Any, settings: InferenceSettings, device: torch.device, proposer: Any = None) -> None:
        self.module = module
        self.device = device
        self.step, self.blend = resolve_window(settings.step, settings.blend, int(module.tile_out))
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
        step = resolve_window(None, None, tile_out)[0] if default else self.step
        passes = tile_count(height, width, tile_out, step)
        return passes * (4 if self.tta else 1)

    def __call__(self, image: np.ndarray | LazyImage, clicks: np.ndarray | None = None) -> np.ndarray:
        probs = self.module.predict_probs(
            image,
            step=self.step,
            blend=self.blend,
            tta=self.tta,
            batch_size=self.batch_size,
            autocast=self.autocast,
        )
        return probs.numpy()
