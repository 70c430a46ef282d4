"""Checkpoints written before the package was laid out by concern still load; one naming a class this version
lacks is refused with the checkpoint's name, not Hydra's bare "Error locating target"."""

from __future__ import annotations

import pytest
import torch

from rootseg.tasks.checkpoints import LEGACY_TARGETS, CheckpointLoadError, load_module


def _with_target(checkpoint: dict, old: str) -> dict:
    checkpoint["rootseg"]["config"]["model"]["_target_"] = old
    checkpoint["rootseg"]["config"]["model"]["loss"]["_target_"] = "rootseg.losses.DiceCELoss"
    return checkpoint


def test_a_checkpoint_of_the_earlier_layout_loads(tiny_checkpoint, tmp_path):
    checkpoint = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    assert checkpoint["rootseg"]["config"]["model"]["_target_"] == "rootseg.tasks.unet.UNetModule"
    old = tmp_path / "old.ckpt"
    torch.save(_with_target(checkpoint, "rootseg.modules.unet.UNetModule"), old)
    module = load_module(old)
    reference = load_module(tiny_checkpoint)
    assert type(module).__name__ == "UNetModule" and type(module.loss).__name__ == "DiceCELoss"
    for key, value in reference.state_dict().items():
        assert torch.equal(value, module.state_dict()[key]), key
    assert LEGACY_TARGETS["rootseg.modules.unet.UNetModule"] == "rootseg.tasks.unet.UNetModule"


def test_a_class_this_version_lacks_is_named_with_the_checkpoint(tiny_checkpoint, tmp_path):
    checkpoint = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    future = tmp_path / "future.ckpt"
    torch.save(_with_target(checkpoint, "rootseg.tasks.unet.UNetModuleV9"), future)
    with pytest.raises(CheckpointLoadError, match=r"future\.ckpt: the model .* cannot be built by this rootseg"):
        load_module(future)
