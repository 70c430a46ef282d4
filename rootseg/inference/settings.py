"""The settings of whole-image inference, one object for eval, predict, export's check and the notebook.

`conf/inference/default.yaml` holds them for both commands, so `python -m rootseg.eval` and `python -m
rootseg.predict` take the same names. A value of null (or `tta=false`) means "not set": the model kind's
own default applies, taken from the checkpoint where it has one (threshold, tile geometry). A setting that
is set but that the checkpoint's model kind cannot honour is an error (`Predictor` checks), never dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch

from rootseg.config import typed
from rootseg.measure.settings import resolve_mm_per_pixel
from rootseg.tiling.device import resolve_device
from rootseg.tiling.grid import BLEND_MODES, GRID_STEP

PRECISIONS = ("auto", "fp32", "bf16")
#: how RootSAM decodes a tile without clicks: one promptless pass, or SAM's filtered grid of clicks
PROMPT_FREE = ("promptless", "grid")


@dataclasses.dataclass(frozen=True)
class InferenceSettings:
    """What turns an image into probabilities and a mask. None: the model's own default."""

    threshold: float | None = None  # probability >= threshold is root; None: the checkpoint's
    step: int | str | None = None  # output pixels between tiles; "tile": Smith's grid; None: half a tile
    blend: str | None = None  # gaussian or constant weighting of overlapping tiles; None: gaussian
    tta: bool = False  # average over the four flips (4x the cost)
    batch_size: int | None = None  # tiles per forward pass (U-Net), clicks per decoder pass (RootSAM)
    device: str = "auto"  # auto: cuda when available; cpu, cuda, cuda:1
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on the CPU
    mm_per_pixel: float | None = None  # from dpi= or mm_per_pixel=; lengths in mm when known
    prompts: str | None = None  # RootSAM: a click file (CSV image,x,y or JSON)
    prompt_ckpt: str | None = None  # RootSAM: a U-Net/Frangi checkpoint proposing the clicks
    grid_points_per_side: int | None = None  # RootSAM: clicks per tile side of the prompt-free grid
    prompt_free: str | None = (
        None  # RootSAM without clicks: promptless or grid; None: what the checkpoint was trained for
    )
    min_predicted_iou: float | None = None  # RootSAM grid: keep a mask with predicted IoU > this; None: ckpt's
    min_stability: float | None = None  # RootSAM grid: ... and stability score >= this; None: the checkpoint's
    resize: int | None = None  # RootSAM: the stage's square side (eval's stage=); None: the checkpoint's
    tile: int | None = None  # RootSAM: the stage's tile side (eval's stage=); None: the checkpoint's

    def __post_init__(self) -> None:
        check_settings(self)

    def given(self) -> dict[str, Any]:
        """The settings a user set (differs from "not set"), by name; device, precision and resolution are
        honoured by every model kind and are left out."""
        out = {}
        for field in dataclasses.fields(self):
            if field.name in ("device", "precision", "mm_per_pixel", "threshold"):
                continue
            value = getattr(self, field.name)
            if value != field.default:
                out[field.name] = value
        return out

    def with_changes(self, **changes: Any) -> InferenceSettings:
        return dataclasses.replace(self, **changes)


def _positive_int(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a whole number >= 1 or null, got {value!r}")


def check_settings(s: InferenceSettings) -> None:
    """Every value in range, before a checkpoint is loaded or an image read."""
    if s.threshold is not None and not (isinstance(s.threshold, int | float) and 0.0 < float(s.threshold) < 1.0):
        raise ValueError(f"threshold must be in (0, 1) (probability >= threshold is root) or null, got {s.threshold!r}")
    if s.step is not None and s.step != GRID_STEP:
        _positive_int("step", s.step)
    if s.blend is not None and s.blend not in BLEND_MODES:
        raise ValueError(f"blend must be one of {BLEND_MODES} or null, got {s.blend!r}")
    if not isinstance(s.tta, bool):
        raise ValueError(f"tta must be true or false, got {s.tta!r}")
    _positive_int("batch_size", s.batch_size)
    _positive_int("grid_points_per_side", s.grid_points_per_side)
    _positive_int("resize", s.resize)
    _positive_int("tile", s.tile)
    if s.prompt_free not in (None, *PROMPT_FREE):
        raise ValueError(f"prompt_free must be one of {PROMPT_FREE} or null, got {s.prompt_free!r}")
    for name in ("min_predicted_iou", "min_stability"):
        value = getattr(s, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1):
            raise ValueError(f"{name} must be a number in [0, 1] (0: no filter) or null, got {value!r}")
    if s.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {s.precision!r}")
    resolve_device(s.device)


def autocast_enabled(precision: str, device: torch.device) -> bool:
    """bf16 autocast: on CUDA unless fp32 is asked for; on the CPU only when asked for (slow without AMX)."""
    if precision == "bf16":
        return True
    return precision == "auto" and device.type == "cuda"


#: settings with no key of their own: eval's stage= (rootseg.evaluation.stages) sets them
STAGE_SETTINGS = frozenset({"resize", "tile"})


#: how a command line's values are typed (rootseg.config.typed) before `check_settings` checks their ranges
TYPES = {
    "threshold": typed.Number(optional=True),
    "tta": typed.Bool(),
    "batch_size": typed.Number(whole=True, optional=True),
    "grid_points_per_side": typed.Number(whole=True, optional=True),
    "min_predicted_iou": typed.Number(optional=True),
    "min_stability": typed.Number(optional=True),
}


def settings_from_config(cfg: Mapping[str, Any]) -> InferenceSettings:
    """The settings of a composed eval or predict config (the keys of conf/inference/default.yaml)."""
    names = {f.name for f in dataclasses.fields(InferenceSettings)} - {"mm_per_pixel", *STAGE_SETTINGS}
    values = typed.check({name: cfg.get(name) for name in names if cfg.get(name) is not None}, TYPES)
    if values.get("step") not in (None, GRID_STEP):
        values["step"] = typed.Number(whole=True).convert("step", values["step"])
    values["mm_per_pixel"] = resolve_mm_per_pixel(cfg)
    for key in ("prompts", "prompt_ckpt"):
        if key in values:
            values[key] = str(values[key])
    return InferenceSettings(**values)
