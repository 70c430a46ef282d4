"""Rebuild a trained model from a rootseg checkpoint alone: the run config travels inside it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import OmegaConf

from rootseg.modules.base import RootSegModule

log = logging.getLogger(__name__)


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
    if "compile" in config.model:
        # torch.compile is a training-speed option; eval, predict and export run the rebuilt model eagerly
        config.model.compile = False
    module: RootSegModule = hydra.utils.instantiate(config.model)
    _load_weights(module, checkpoint, path, "the model its config describes")
    # the weights are the trained ones: never replace them by the run's `model.init_ckpt` (see setup)
    module._init_loaded = True
    module.run_config = meta["config"]
    module.eval()
    return module


def _load_weights(module: RootSegModule, checkpoint: dict[str, Any], path: str | Path, what: str) -> None:
    # as Lightning does before loading: a module may put back weights it left out (RootSAM's frozen encoder)
    try:
        module.on_load_checkpoint(checkpoint)
    except CheckpointLoadError as error:
        raise CheckpointLoadError(f"{path}: {error}") from error
    try:
        module.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as error:
        raise CheckpointLoadError(f"{path}: weights do not fit {what} ({str(error).splitlines()[0]})") from error


def load_init_weights(module: RootSegModule, path: str | Path) -> None:
    """`model.init_ckpt`: the weights of a rootseg checkpoint of the same model kind, loaded strictly into
    `module`; its optimizer, scheduler, epoch, step and callback states are ignored (a new run starts from
    them; to continue a run use `ckpt_path`)."""
    checkpoint = read_checkpoint(path)
    kind = checkpoint["rootseg"].get("kind")
    if kind != module.kind:
        raise CheckpointLoadError(
            f"{path}: model.init_ckpt must be a {module.kind!r} checkpoint like the model it starts, this is a "
            f"{kind!r} one"
        )
    _load_weights(module, checkpoint, path, "this model; use the model/net of the run that wrote it")
    log.info("weights loaded from %s (model.init_ckpt; optimizer, epoch and step start afresh)", path)


def attach_prompt_proposer(module: RootSegModule, path: str | Path | None, device: torch.device | str) -> None:
    """`prompt_ckpt=`: RootSAM clicks proposed by another checkpoint's probability map (a U-Net's skeleton)
    instead of a grid, for eval and predict of RootSAM without human clicks."""
    if not path:
        return
    if module.kind != "rootsam":
        raise ValueError(f"prompt_ckpt={path} proposes RootSAM's clicks, but ckpt_path is a {module.kind!r} model")
    proposer = load_module(path)
    if proposer.kind == "rootsam":
        raise ValueError(f"prompt_ckpt={path} is a RootSAM checkpoint: give a U-Net (or Frangi) checkpoint")
    proposer.to(device)
    module.use_proposals(proposer)
    log.info("RootSAM clicks proposed by %s (%s): skeleton of its probability map", path, proposer.kind)


def set_click_grid(module: RootSegModule, points_per_side: int | None) -> None:
    """`grid_points_per_side=`: RootSAM's prompt-free clicks per tile side (also the most clicks per tile on a
    proposer's skeleton). Each click is one mask-decoder pass, so halving it makes a CPU eval ~4x faster."""
    if points_per_side is None:
        return
    if module.kind != "rootsam":
        raise ValueError(
            f"grid_points_per_side={points_per_side} sets RootSAM's clicks, but ckpt_path is a {module.kind!r} model"
        )
    if isinstance(points_per_side, bool) or not isinstance(points_per_side, int) or points_per_side < 1:
        raise ValueError(f"grid_points_per_side must be a whole number >= 1, got {points_per_side!r}")
    module.grid_points_per_side = points_per_side
    log.info("RootSAM: %d x %d clicks per tile", points_per_side, points_per_side)
