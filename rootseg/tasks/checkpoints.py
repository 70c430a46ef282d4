"""Rebuild a trained model from a rootseg checkpoint alone: the run config travels inside it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.errors import InstantiationException
from omegaconf import OmegaConf

from rootseg.models import shipped
from rootseg.models.freezing import ROOTSAM_ENCODER, ROOTSAM_FROZEN, ROOTSAM_HIGH_RES_CONVS

log = logging.getLogger(__name__)


class CheckpointLoadError(ValueError):
    """The checkpoint is missing, unreadable, or not what the command needs."""


def checkpoint_file(value: str | Path) -> Path:
    """The file a checkpoint setting (`ckpt_path`, `model.init_ckpt`, ...) names: a path, or the name of a
    shipped model (`rootseg.models.shipped`), whose sha256 is checked here. The one resolver of every command."""
    try:
        return shipped.resolve(value)
    except shipped.ShippedModelError as error:
        raise CheckpointLoadError(str(error)) from None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = checkpoint_file(path)
    if not path.is_file():
        names = ", ".join(shipped.shipped_models()) or "none in this installation"
        raise CheckpointLoadError(
            f"{path}: checkpoint not found. Pass ckpt_path=PATH to a .ckpt written by rootseg.train "
            f"(in <run dir>/checkpoints/), or the name of a shipped model ({names}; python -m rootseg.models)."
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


#: classes that moved when the package was laid out by concern (checkpoints written before keep loading)
LEGACY_TARGETS = {
    "rootseg.modules.unet.UNetModule": "rootseg.tasks.unet.UNetModule",
    "rootseg.modules.rootsam.RootSAMModule": "rootseg.tasks.rootsam.RootSAMModule",
    "rootseg.modules.frangi.FrangiModule": "rootseg.tasks.frangi.FrangiModule",
    "rootseg.losses.DiceCELoss": "rootseg.tasks.losses.DiceCELoss",
    "rootseg.losses.SAMLoss": "rootseg.tasks.losses.SAMLoss",
    "rootseg.data.sources.FolderSource": "rootseg.sources.folder.FolderSource",
    "rootseg.data.sources.SyntheticSource": "rootseg.sources.synthetic.SyntheticSource",
    "rootseg.data.prmi.PRMISource": "rootseg.sources.prmi.PRMISource",
    "rootseg.data.rootpainter.RootPainterSource": "rootseg.sources.rootpainter.RootPainterSource",
    "rootseg.data.datamodules.UNetDataModule": "rootseg.datamodules.unet.UNetDataModule",
    "rootseg.data.rootsam_data.RootSAMDataModule": "rootseg.datamodules.rootsam.RootSAMDataModule",
    "rootseg.data.transforms.smith2020_transform": "rootseg.datamodules.transforms.smith2020_transform",
    "rootseg.utils.checkpoint_io.AtomicCheckpointIO": "rootseg.tasks.checkpoint_io.AtomicCheckpointIO",
}


def _renamed_targets(config: Any) -> Any:
    """The stored run config with every `_target_` of an earlier layout replaced by its class's new home."""
    if isinstance(config, dict):
        return {
            key: LEGACY_TARGETS.get(value, value) if key == "_target_" else _renamed_targets(value)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [_renamed_targets(value) for value in config]
    return config


def _legacy_freezing_keys(model_config: dict[str, Any]) -> dict[str, Any]:
    """A model config written before the one policy (`frozen_patterns` / `trainable_patterns`) in today's keys,
    so that its checkpoints still load: the encoder trains iff a trainable pattern named it and no frozen one
    did; frozen patterns beyond the policy's become `extra_frozen_patterns`."""
    if "frozen_patterns" not in model_config and "trainable_patterns" not in model_config:
        return model_config
    config = dict(model_config)
    frozen = list(config.pop("frozen_patterns", None) or ())
    trainable = list(config.pop("trainable_patterns", None) or ())
    encoder = ROOTSAM_ENCODER[0]
    config.setdefault("train_image_encoder", encoder in trainable and encoder not in frozen)
    policy = set(ROOTSAM_FROZEN) | set(ROOTSAM_HIGH_RES_CONVS)
    config.setdefault("extra_frozen_patterns", [p for p in frozen if p not in policy])
    return config


def _upgraded(config: dict[str, Any]) -> dict[str, Any]:
    """A stored run config in this version's terms: classes at their new homes, RootSAM's freezing keys."""
    config = _renamed_targets(config)
    if isinstance(config.get("model"), dict):
        config["model"] = _legacy_freezing_keys(config["model"])
    return config


def stored_config(path: str | Path) -> dict[str, Any]:
    """The run config a checkpoint was trained with, `_target_`s renamed to this layout: what a run that
    starts from it (`model.init_ckpt`, the annotate app's fine-tuning) must rebuild."""
    return _upgraded(read_checkpoint(path)["rootseg"].get("config") or {})


def load_module(path: str | Path, expected_kind: str | None = None) -> L.LightningModule:
    """The LightningModule of a checkpoint, on the CPU, in eval mode, with its run config attached."""
    checkpoint = read_checkpoint(path)
    meta = checkpoint["rootseg"]
    if expected_kind is not None and meta.get("kind") != expected_kind:
        raise CheckpointLoadError(
            f"{path}: a {meta.get('kind')!r} checkpoint, but this command needs a {expected_kind!r} one"
        )
    config = OmegaConf.create(_upgraded(meta["config"]))
    if "compile" in config.model:
        # torch.compile is a training-speed option; eval, predict and export run the rebuilt model eagerly
        config.model.compile = False
    try:
        module: L.LightningModule = hydra.utils.instantiate(config.model)
    except InstantiationException as error:
        raise CheckpointLoadError(
            f"{path}: the model this checkpoint's config describes cannot be built by this rootseg version "
            f"({str(error).splitlines()[0]}). It was written by another version; use that version, or retrain."
        ) from error
    _load_weights(module, checkpoint, path, "the model its config describes")
    # the weights are the trained ones: never replace them by the run's `model.init_ckpt` (see setup)
    module._init_loaded = True
    module.run_config = meta["config"]
    module.eval()
    return module


def _load_weights(module: L.LightningModule, checkpoint: dict[str, Any], path: str | Path, what: str) -> None:
    # as Lightning does before loading: a module may put back weights it left out (RootSAM's frozen encoder)
    try:
        module.on_load_checkpoint(checkpoint)
    except CheckpointLoadError as error:
        raise CheckpointLoadError(f"{path}: {error}") from error
    try:
        module.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as error:
        raise CheckpointLoadError(f"{path}: weights do not fit {what} ({str(error).splitlines()[0]})") from error


def load_init_weights(module: L.LightningModule, path: str | Path) -> None:
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


def write_untrained(cfg: Any, path: str | Path, seed: int = 0) -> Path:
    """The checkpoint `rootseg.train` would write for the train config `cfg` before its first step: random weights,
    the run config inside. For what does not depend on the weights (memory, speed, file handling) and for tests;
    never for accuracy."""
    from rootseg.config.run_config import resolved_container

    L.seed_everything(seed, verbose=False)
    module = hydra.utils.instantiate(cfg.model)
    module.run_config = resolved_container(cfg)
    return save_weights(module, path)


def save_weights(module: L.LightningModule, path: str | Path) -> Path:
    """`module` as it is, with its `run_config`, as a checkpoint eval, predict and report read (written
    atomically): the zero-shot baseline, which trains nothing, is scored from this."""
    from rootseg.tasks.checkpoint_io import AtomicCheckpointIO

    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    trainer = L.Trainer(accelerator="cpu", enable_model_summary=False, plugins=[AtomicCheckpointIO()], **quiet)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return Path(path)
