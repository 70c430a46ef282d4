"""Build SAM 2.1 without touching Hydra's global state, and load Meta's checkpoints strictly.

`sam2.build_sam.build_sam2` composes its config through Hydra's global config search path, which fails
under a running `@hydra.main` app (sam2 issues 26, 81, 531, 721). Here the packaged YAML is read with
`OmegaConf.load`, the same post-processing keys `build_sam2` adds are merged, user overrides applied, and
`hydra.utils.instantiate` builds the model: no `compose`, no `GlobalHydra`, so it works in an app, in tests
and in notebooks alike.

`sam2` is imported only inside the functions, through `import_sam2`: importing it initialises Hydra's
global state as a side effect (`sam2/__init__.py`), which would make a later `hydra.initialize` or
`@hydra.main` in the same process fail ("GlobalHydra is already initialized"). `import_sam2` undoes that
side effect when Hydra was not initialised before (sam2's own `build_sam2`, which needs it, is never used).
"""

from __future__ import annotations

import importlib.resources
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

# What `sam2.build_sam.build_sam2(..., apply_postprocessing=True)` adds to every config (sam2 1.1.0).
# They only change the mask decoder in eval mode with multimask_output=False: fall back to the best of the
# multimask outputs when the single-mask output is unstable.
SAM2_POSTPROCESSING: dict[str, Any] = {
    "model": {
        "sam_mask_decoder_extra_args": {
            "dynamic_multimask_via_stability": True,
            "dynamic_multimask_stability_delta": 0.05,
            "dynamic_multimask_stability_thresh": 0.98,
        }
    }
}

# Overrides of sam2.1_hiera_t that keep every code path (windowed + global attention, q-pooling, FPN with
# high-res features, 3-mask decoder) but make a ~6.6 M parameter model encoding a 128 px image in ~20 ms on
# one CPU thread: for tests only (random weights; no checkpoint exists for it). The mask decoder and prompt
# encoder are SAM's full ones. Global attention must not sit on a q-pooling block (Hiera's first block of
# each stage after the first), or Hiera divides by a zero window size.
SAM2_MICRO_OVERRIDES: dict[str, Any] = {
    "image_size": 128,
    "image_encoder.trunk.embed_dim": 16,
    "image_encoder.trunk.stages": [1, 1, 2, 1],
    "image_encoder.trunk.global_att_blocks": [3],
    "image_encoder.neck.backbone_channel_list": [128, 64, 32, 16],
    "memory_attention.num_layers": 1,
    "memory_attention.layer.dim_feedforward": 64,
}

SAM2_CONFIGS = ("sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l")

# Embedding width of each Hiera trunk: the first weight that tells one checkpoint from another.
_TRUNK_EMBED_DIM = {96: "sam2.1_hiera_t or sam2.1_hiera_s", 112: "sam2.1_hiera_b+", 144: "sam2.1_hiera_l"}
_TRUNK_BLOCKS = {12: "sam2.1_hiera_t", 16: "sam2.1_hiera_s", 24: "sam2.1_hiera_b+", 48: "sam2.1_hiera_l"}


class CheckpointError(ValueError):
    """A SAM checkpoint that cannot be loaded into the model; the message names the file and the fix."""


def import_sam2() -> None:
    """Import the `sam2` package without leaving Hydra's global state initialised by it."""
    if "sam2" in sys.modules:
        return
    from hydra.core.global_hydra import GlobalHydra

    was_initialised = GlobalHydra.instance().is_initialized()
    import sam2  # noqa: F401  (its __init__ calls hydra.initialize_config_module("sam2"))

    if not was_initialised:
        GlobalHydra.instance().clear()


def sam2_config_path(config_name: str) -> Path:
    """Path of the YAML that sam2 ships for `config_name` (e.g. "sam2.1_hiera_t"; a ".yaml" suffix is ok).

    A name containing "/" or ending in ".yaml" that exists on disk is taken as a path of its own.
    """
    candidate = Path(config_name)
    if candidate.suffix == ".yaml" and candidate.is_file():
        return candidate
    name = config_name.removesuffix(".yaml")
    import_sam2()
    resource = importlib.resources.files("sam2") / "configs" / "sam2.1" / f"{name}.yaml"
    if not resource.is_file():
        raise FileNotFoundError(
            f"no sam2 config named {config_name!r}; choose one of {', '.join(SAM2_CONFIGS)} "
            "or give the path of a YAML file"
        )
    return Path(str(resource))


def load_sam2_config(
    config_name: str = "sam2.1_hiera_l",
    overrides: dict[str, Any] | DictConfig | None = None,
    apply_postprocessing: bool = True,
) -> DictConfig:
    """The resolved sam2 config (top-level key `model`), with sam2's post-processing and `overrides` merged.

    `overrides` is a nested dict relative to the `model` node, e.g. `{"image_size": 512}` or
    `{"sam_mask_decoder_extra_args": {"dynamic_multimask_via_stability": False}}`; dotted keys
    (`{"image_encoder.trunk.drop_path_rate": 0.1}`) are expanded as well.
    """
    cfg = OmegaConf.load(sam2_config_path(config_name))
    if not isinstance(cfg, DictConfig) or "model" not in cfg:
        raise ValueError(f"{config_name}: a sam2 config must have a top-level `model` node")
    if apply_postprocessing:
        cfg = OmegaConf.merge(cfg, SAM2_POSTPROCESSING)
    if overrides:
        if isinstance(overrides, DictConfig):
            overrides = OmegaConf.to_container(overrides, resolve=True)
        model_overrides = OmegaConf.create()
        for key, value in dict(overrides).items():
            OmegaConf.update(model_overrides, str(key), value, merge=True, force_add=True)
        cfg = OmegaConf.merge(cfg, {"model": model_overrides})
    OmegaConf.resolve(cfg)
    return cfg


def build_sam2_model(
    config_name: str = "sam2.1_hiera_l",
    overrides: dict[str, Any] | DictConfig | None = None,
    ckpt_path: str | Path | None = None,
    apply_postprocessing: bool = True,
) -> nn.Module:
    """Instantiate `sam2.modeling.sam2_base.SAM2Base` from sam2's packaged config; optionally load weights.

    Args:
        config_name: one of `SAM2_CONFIGS` (the file under sam2/configs/sam2.1/) or a path to a YAML.
        overrides: keys under `model` to change, e.g. `{"image_size": 512}` (see `load_sam2_config`).
        ckpt_path: a Meta checkpoint (`{"model": state_dict}`) loaded strictly by `load_sam2_checkpoint`.
        apply_postprocessing: merge the keys sam2's `build_sam2` adds (`SAM2_POSTPROCESSING`).

    Returns the model in train mode on the CPU (the caller moves it and calls `.eval()`).
    Works with or without Hydra's global state (inside `@hydra.main`, after `GlobalHydra.clear()`).
    """
    from hydra.utils import instantiate

    cfg = load_sam2_config(config_name, overrides, apply_postprocessing)
    model = instantiate(cfg.model, _recursive_=True)
    if ckpt_path is not None:
        load_sam2_checkpoint(model, ckpt_path)
    return model


def guess_sam2_config(state_dict: dict[str, Any]) -> str | None:
    """Which sam2.1 config a state dict belongs to, judged by its Hiera trunk (None if it cannot tell)."""
    weight = state_dict.get("image_encoder.trunk.patch_embed.proj.weight")
    if not isinstance(weight, torch.Tensor):
        return None
    blocks = {k.split(".")[3] for k in state_dict if k.startswith("image_encoder.trunk.blocks.")}
    return _TRUNK_BLOCKS.get(len(blocks)) or _TRUNK_EMBED_DIM.get(int(weight.shape[0]))


def _first(keys: list[str], n: int = 5) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def read_sam2_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict stored in a SAM 2 checkpoint file (`{"model": state_dict}` or a bare state dict)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such checkpoint file; download it from Meta (e.g. sam2.1_hiera_large.pt) and give its path"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and unpickler errors of many kinds
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint ({type(error).__name__}: {str(error)[:200]}); is the download complete?"
        ) from error
    if isinstance(data, dict) and "model" in data and isinstance(data["model"], dict):
        data = data["model"]
    if not isinstance(data, dict) or not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(
            f"{path}: holds no SAM 2 state dict (expected {{'model': state_dict}} as Meta's files hold)"
        )
    return data


def load_sam2_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a Meta SAM 2 checkpoint strictly into `model`; raise `CheckpointError` on any mismatch.

    Missing keys, unexpected keys and shape mismatches are all reported together, naming the file, the first
    offending keys and (where the trunk tells) which config the checkpoint belongs to.
    """
    path = Path(path)
    state_dict = read_sam2_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        problems = []
        if mismatched:
            problems.append(f"{len(mismatched)} shape mismatches: {_first(mismatched, 3)}")
        if missing:
            problems.append(f"{len(missing)} missing keys: {_first(missing)}")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys: {_first(unexpected)}")
        found, expected = guess_sam2_config(state_dict), guess_sam2_config(own)
        if found and found != expected:
            hint = f"This looks like a {found} checkpoint but the model is {expected}; set model/net={found}."
        else:
            hint = "Check that model/net names the config the checkpoint was trained with."
        raise CheckpointError(f"{path}: does not fit the model; " + "; ".join(problems) + f". {hint}")
    model.load_state_dict(state_dict, strict=True)
    return model
