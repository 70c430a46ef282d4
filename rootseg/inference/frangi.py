"""The Frangi + CMA-ES baseline on whole images: NumPy and scikit-image, on the CPU, no settings of its own."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from rootseg.inference.settings import InferenceSettings
from rootseg.io.images import LazyImage


class FrangiInference:
    """Whole-image prediction of the Frangi baseline (`rootseg.tasks.frangi.FrangiModule`): 0/1 probabilities."""

    honours: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, module: Any, settings: InferenceSettings, device: torch.device, proposer: Any = None) -> None:
        if settings.device not in (None, "", "auto", "cpu"):
            raise ValueError(
                f"device={settings.device}: the Frangi baseline runs on the CPU (scikit-image); use device=auto or cpu"
            )
        self.module = module

    def describe(self) -> dict[str, Any]:
        return self.module.describe()

    def __call__(self, image: np.ndarray | LazyImage, clicks: np.ndarray | None = None) -> np.ndarray:
        return self.module.predict_probs(np.asarray(image)).float().numpy()
