"""Checkpoints are written beside their final name and renamed, whatever file system $TMPDIR is on."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch

from rootseg.tasks.checkpoint_io import AtomicCheckpointIO


def test_a_write_killed_midway_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 1, "w": torch.arange(4)}, path)
    assert torch.load(path)["epoch"] == 1

    def dies_midway(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")  # the open temporary file save_checkpoint hands torch.save
        f.flush()
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path)["epoch"] == 1  # the previous checkpoint, whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # no temporary file left


def test_the_temporary_file_is_in_the_checkpoint_folder_not_tmpdir(tmp_path, monkeypatch):
    other_tmp = tmp_path / "node_local_tmp"
    other_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(other_tmp))
    monkeypatch.setattr("tempfile.tempdir", None)
    written = []
    real_save = torch.save

    def recording_save(obj, f, *args, **kwargs):
        written.append(Path(f.name))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", recording_save)
    AtomicCheckpointIO().save_checkpoint({"epoch": 3}, tmp_path / "run" / "epoch_003.ckpt")
    assert len(written) == 1 and written[0].parent == tmp_path / "run" and written[0].name.startswith(".")
    assert not any(other_tmp.iterdir())
    with pytest.raises(TypeError, match="storage_options"):
        AtomicCheckpointIO().save_checkpoint({}, tmp_path / "x.ckpt", storage_options={"a": 1})


@pytest.mark.parametrize("trainer", ["default", "cpu", "ddp_sim"])
def test_every_trainer_config_saves_through_it(compose, trainer, tmp_path):
    cfg = compose("train", ["+experiment=unet_demo", f"trainer={trainer}"])
    built = hydra.utils.instantiate(cfg.trainer, default_root_dir=str(tmp_path), logger=False)
    assert isinstance(built.strategy.checkpoint_io, AtomicCheckpointIO)
