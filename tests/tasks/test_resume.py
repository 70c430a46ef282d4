"""Resuming from a damaged last.ckpt: the newest whole checkpoint instead, with a warning naming the damaged
one; metrics.csv is renamed only once a checkpoint has loaded, so a failed resume loses no log."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import TINY_TRAIN, compose_run

from rootseg.tasks.resume import DamagedCheckpointError, checkpoint_problem, resume_path


@pytest.fixture
def earlier_run(tmp_path, tiny_checkpoint) -> Path:
    """A copy of the two-epoch tiny run: checkpoints/last.ckpt (epoch 1), the best epoch_*.ckpt, csv/metrics.csv."""
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_checkpoint.parents[1], run_dir, ignore=shutil.ignore_patterns("wandb"))
    return run_dir


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_a_byte_in_a_tensor(path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        member = max(archive.infolist(), key=lambda info: info.file_size)  # the largest tensor's storage
        offset = member.header_offset + 30 + len(member.filename.encode()) + len(member.extra) + member.file_size // 2
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_checkpoint_problem_names_truncation_corruption_and_missing_state(tmp_path, tiny_checkpoint):
    assert checkpoint_problem(tiny_checkpoint) is None
    truncated = tmp_path / "truncated.ckpt"
    shutil.copy(tiny_checkpoint, truncated)
    _truncate(truncated)
    assert "truncated" in checkpoint_problem(truncated)
    flipped = tmp_path / "flipped.ckpt"
    shutil.copy(tiny_checkpoint, flipped)
    _flip_a_byte_in_a_tensor(flipped)
    assert "fails its checksum" in checkpoint_problem(flipped)
    weights = tmp_path / "weights.ckpt"
    saved = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    torch.save({"state_dict": saved["state_dict"], "epoch": 1}, weights)
    assert checkpoint_problem(weights).startswith("it lacks optimizer_states, loops")
    (tmp_path / "text.ckpt").write_text("hello")
    assert "not a checkpoint" in checkpoint_problem(tmp_path / "text.ckpt")


def test_damaged_last_checkpoint_falls_back_to_the_newest_whole_one(earlier_run, synthetic_dir, caplog):
    from rootseg.tasks.fit import train

    folder = earlier_run / "checkpoints"
    best = next(folder.glob("epoch_*.ckpt"))
    best_epoch = int(torch.load(best, map_location="cpu", weights_only=False)["epoch"])
    earlier_rows = pd.read_csv(earlier_run / "csv" / "metrics.csv")
    _truncate(folder / "last.ckpt")
    overrides = [*TINY_TRAIN, f"data.root={synthetic_dir}", "trainer.max_epochs=3", "test=false", "logger=csv"]
    with caplog.at_level("WARNING"):
        train(compose_run("train", [*overrides, "ckpt_path=last"], earlier_run))
    assert f"{folder / 'last.ckpt'} is damaged (it is truncated" in caplog.text
    assert f"resuming from {best}" in caplog.text
    resumed = pd.read_csv(earlier_run / "csv" / "metrics.csv")
    assert resumed["epoch"].min() == best_epoch + 1  # went on from the fallback's epoch, not from scratch
    assert resumed["epoch"].max() == 2
    kept = pd.read_csv(earlier_run / "csv" / "metrics_part1.csv")
    pd.testing.assert_frame_equal(kept, earlier_rows)
    # the next epoch's last.ckpt replaced the damaged one
    assert checkpoint_problem(folder / "last.ckpt") is None


def test_no_whole_checkpoint_is_a_clear_error_and_renames_nothing(earlier_run):
    folder = earlier_run / "checkpoints"
    for path in folder.glob("*.ckpt"):
        _truncate(path)
    with pytest.raises(DamagedCheckpointError, match=r"last.ckpt is damaged .* no other checkpoint in .* reads whole"):
        resume_path("last", earlier_run)
    with pytest.raises(DamagedCheckpointError, match="cannot resume from .*last.ckpt: it is truncated"):
        resume_path(str(folder / "last.ckpt"), earlier_run)
    assert (earlier_run / "csv" / "metrics.csv").is_file()


def test_logs_are_renamed_only_after_the_checkpoint_has_loaded(earlier_run, synthetic_dir):
    """A whole checkpoint of another net reads whole but Lightning cannot load it: metrics.csv stays put."""
    from rootseg.tasks.fit import train

    last = earlier_run / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=False)
    name = next(k for k, v in saved["state_dict"].items() if v.ndim == 4)
    saved["state_dict"][name] = torch.zeros(1, 1, 1, 1)
    torch.save(saved, last)
    before = (earlier_run / "csv" / "metrics.csv").read_bytes()
    overrides = [*TINY_TRAIN, f"data.root={synthetic_dir}", "trainer.max_epochs=3", "test=false", "logger=csv"]
    with pytest.raises(RuntimeError, match="size mismatch"):
        train(compose_run("train", [*overrides, "ckpt_path=last"], earlier_run))
    assert (earlier_run / "csv" / "metrics.csv").read_bytes() == before
    assert not (earlier_run / "csv" / "metrics_part1.csv").exists()
