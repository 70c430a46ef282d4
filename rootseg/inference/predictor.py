"""One predictor for every model kind: a checkpoint's module plus `InferenceSettings` -> probabilities and masks.

eval, predict, export's parity check and the notebook all call `Predictor.probabilities` and `Predictor.mask`,
so the masks eval scores are the masks predict writes. Defaults come from the checkpoint (its threshold, its
tile geometry), then from `conf/inference/default.yaml`; a setting the model kind cannot honour (`tta` for
RootSAM, `prompts` for the U-Net) is refused by name.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from rootseg.inference.clicks import assign_clicks, check_clicks_inside, read_prompt_file
from rootseg.inference.frangi import FrangiInference
from rootseg.inference.rootsam import RootSAMInference
from rootseg.inference.settings import InferenceSettings, resolve_device
from rootseg.inference.unet import UNetInference
from rootseg.io.images import LazyImage, image_size
from rootseg.tasks.checkpoints import load_module

log = logging.getLogger(__name__)


class KindInference(Protocol):
    """How one model kind turns a whole image into probabilities."""

    honours: frozenset[str]

    def __call__(self, image: np.ndarray | LazyImage, clicks: np.ndarray | None = None) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


#: model kind (`module.kind`, stored in every checkpoint) -> its whole-image inference
KINDS: dict[str, type] = {"unet": UNetInference, "rootsam": RootSAMInference, "frangi": FrangiInference}


class Predictor:
    """A loaded model and the settings it predicts with; images of any size in, (H, W) float32 out."""

    def __init__(
        self,
        module: Any,
        settings: InferenceSettings | None = None,
        proposer: Predictor | None = None,
        checkpoint: str | Path | None = None,
    ) -> None:
        settings = settings or InferenceSettings()
        kind = getattr(module, "kind", None)
        where = f"{checkpoint}: " if checkpoint else ""
        if kind not in KINDS:
            raise ValueError(f"{where}no predictor for model kind {kind!r}; known kinds: {sorted(KINDS)}")
        implementation = KINDS[kind]
        refused = sorted(set(settings.given()) - implementation.honours)
        if refused:
            shown = ", ".join(f"{name}={getattr(settings, name)}" for name in refused)
            raise ValueError(
                f"{where}{shown}: a {kind} model cannot honour {'this setting' if len(refused) == 1 else 'these'}"
                f" (it takes {', '.join(sorted(implementation.honours)) or 'none of the window or prompt settings'});"
                " drop it from the command"
            )
        self.kind = kind
        self.module = module
        self.settings = settings
        self.checkpoint = str(checkpoint) if checkpoint else None
        self.device = resolve_device(settings.device)
        self.threshold = float(settings.threshold if settings.threshold is not None else module.threshold)
        module.to(self.device)
        module.eval()
        self.proposer = proposer
        self.impl: KindInference = implementation(module, settings, self.device, proposer)
        self._clicks: dict[Path, np.ndarray] = {}
        self._click_file = read_prompt_file(settings.prompts) if settings.prompts else None

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, settings: InferenceSettings | None = None, module: Any = None
    ) -> Predictor:
        """Load `path` (unless its `module` is given, loaded already) and `settings.prompt_ckpt`, the proposer of
        RootSAM's clicks, on the settings' device."""
        settings = settings or InferenceSettings()
        module = module if module is not None else load_module(path)
        proposer = None
        if settings.prompt_ckpt:
            if getattr(module, "kind", None) != "rootsam":
                raise ValueError(
                    f"prompt_ckpt={settings.prompt_ckpt} proposes RootSAM's clicks, but ckpt_path={path} is a "
                    f"{module.kind!r} model; drop prompt_ckpt"
                )
            proposer_settings = InferenceSettings(device=settings.device, precision=settings.precision)
            proposer = cls.from_checkpoint(settings.prompt_ckpt, proposer_settings)
            if proposer.kind == "rootsam":
                raise ValueError(
                    f"prompt_ckpt={settings.prompt_ckpt} is a RootSAM checkpoint: give a U-Net (or Frangi) checkpoint"
                )
            log.info("RootSAM clicks proposed by %s (%s): skeleton of its mask", settings.prompt_ckpt, proposer.kind)
        return cls(module, settings, proposer=proposer, checkpoint=path)

    def bind_images(self, images: Sequence[Path]) -> None:
        """Match the click file (`prompts=`) to the images about to be predicted; an ambiguous name stops here,
        before any image is segmented."""
        if self._click_file is not None:
            self._clicks = assign_clicks(self._click_file, list(images), self.settings.prompts)
            for image, clicks in self._clicks.items():
                if (shape := image_size(image)) is not None:
                    check_clicks_inside(clicks, shape, image, self.settings.prompts)

    def probabilities(
        self, image: np.ndarray | LazyImage, path: str | Path | None = None, clicks: np.ndarray | None = None
    ) -> np.ndarray:
        """(H, W, 3) uint8 image (or a LazyImage) -> (H, W) float32 root probability in [0, 1].

        RootSAM only: `clicks` (P, 2) x, y image pixels, each its own root, or (P, 3) with labels 1 root /
        0 not root, together one object (the annotate app's clicks); default: the `prompts=` file's for `path`.
        """
        if clicks is not None and self.kind != "rootsam":
            raise ValueError(f"{self.checkpoint or 'this model'}: a {self.kind} model takes no clicks; give RootSAM's")
        if clicks is None and path is not None:
            clicks = self._clicks.get(Path(path))
            if clicks is not None:  # a file whose header could not be read at bind_images
                check_clicks_inside(clicks, image.shape, Path(path), str(self.settings.prompts))
        with torch.inference_mode():
            probs = self.impl(image, clicks)
        return np.asarray(probs, dtype=np.float32)

    def tiles(self, height: int, width: int, default: bool = False) -> int | None:
        """Model passes for an image of this size (`default`: at the default step); None where the model kind
        has no sliding window (Frangi, RootSAM with clicks)."""
        count = getattr(self.impl, "tiles", None)
        return None if count is None else count(height, width, default)

    def mask(self, probs: np.ndarray) -> np.ndarray:
        """Root where probability >= threshold: the one rule every score and file uses."""
        return probs >= self.threshold

    def describe(self) -> dict[str, Any]:
        """The settings that scored (summary.md, predict_config.yaml)."""
        info = {"kind": self.kind, "threshold": self.threshold, "device": str(self.device)}
        info["precision"] = self.settings.precision
        info.update(self.impl.describe())
        if self.settings.prompts:
            info["prompts"] = self.settings.prompts
        if self.proposer is not None:
            info["prompt_ckpt"] = self.proposer.checkpoint
        return info
