"""Rebuild a trained model from a rootseg checkpoint alone: the run config travels inside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import OmegaConf

from rootseg.modules.base import RootSegModule


class CheckpointLoadError(ValueError):
    """The checkpoint is missing, unreadable, or not what the command needs."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointLoadError(
            f"{path}: checkpoint not found. Pass ckpt_path=PATH to a .ckpt written by rootseg.train "
            "(in <run dir>/checkpoints/)."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise CheckpointLoadError(
            f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(checkpoint, dict) or "rootseg" not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointLoadError(
            f"{path}: not a rootseg training checkpoint (no 'rootseg' entry). SAM 2.1 weights from Meta go in "
            "model.net.ckpt_path=... of a RootSAM experiment, not in ckpt_path."
        )
    return checkpoint


def load_module(path: str | Path, expected_kind: str | None = None) -> RootSegModule:
    """The LightningModule of a checkpoint, on the CPU, in eval mode, with its run config attached."""
    checkpoint = read_checkpoint(path)
    meta = checkpoint["rootseg"]
    if expected_kind is not None and meta.get("kind") != expected_kind:
        raise CheckpointLoadError(
            f"{path}: a {meta.get('kind')!r} checkpoint, but this command needs a {expected_kind!r} one"
        )
    config = OmegaConf.create(meta["config"])
    module: RootSegModule = hydra.utils.instantiate(config.model)
    # as Lightning does before loading: a module may put back weights it left out (RootSAM's frozen encoder)
    try:
        module.on_load_checkpoint(checkpoint)
    except CheckpointLoadError as error:
        raise CheckpointLoadError(f"{path}: {error}") from error
    try:
        module.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as error:
        raise CheckpointLoadError(
            f"{path}: weights do not fit the model its config describes ({str(error).splitlines()[0]})"
        ) from error
    module.run_config = meta["config"]
    module.eval()
    return module
