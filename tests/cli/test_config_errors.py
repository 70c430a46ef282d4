"""Config and run-setup mistakes: each a one-paragraph error that says what to do, never a bare traceback.
Also: an unwritable or full output disk is refused before training, and a non-finite loss is skipped or
stops the run by config, naming the step and batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, TINY_TRAIN, child_env, compose_run

from rootseg.tasks.checkpoints import CheckpointLoadError, load_module

ENV = child_env(OMP_NUM_THREADS="1", HYDRA_FULL_ERROR="0")


def _cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=120, env=ENV
    )


def test_unknown_experiment_lists_the_known_ones():
    run = _cli("rootseg.train", "+experiment=nope")
    assert run.returncode != 0
    assert "Could not find 'experiment/nope'" in run.stderr and "unet_smith2020" in run.stderr


def test_override_typo_says_which_key_was_meant():
    run = _cli("rootseg.train", "+experiment=unet_demo", "trainer.max_epoch=3")
    assert run.returncode != 0
    assert "did you mean trainer.max_epochs?" in run.stderr and "Traceback" not in run.stderr


def test_override_hint_reads_keys_in_the_chosen_groups():
    """Group choices (debug=limit, model/optimizer=adamw) are not mistyped keys, and keys are looked up in
    the config those choices compose: SGD has nesterov, unet_demo's AdamW has not."""
    from hydra.core.global_hydra import GlobalHydra

    from rootseg.cli.errors import override_hint

    GlobalHydra.instance().clear()
    assert override_hint("train", ["+experiment=unet_demo", "debug=limit", "hparams_search=unet_optuna"]) is None
    demo_sgd = ["+experiment=unet_demo", "model/optimizer=sgd_smith2020"]
    assert override_hint("train", [*demo_sgd, "model.optimizer.nesterov=false"]) is None
    assert "model.optimizer.nesterov" in override_hint("train", ["+experiment=unet_demo", "model.optimizer.nesterov=0"])
    hint = override_hint("train", [*demo_sgd, "model.optimizer.momentun=0.9"])
    assert hint is not None and "did you mean model.optimizer.momentum?" in hint
    # a key whose value the chosen group leaves as ??? is a setting all the same
    for command in ("train", "eval", "check"):
        assert override_hint(command, ["data=folder", "data.root=/scans"]) is None
    assert "did you mean data.root?" in override_hint("train", ["data=folder", "data.rot=/scans"])


def test_missing_ckpt_path_is_one_line_not_a_traceback(tmp_path):
    run = _cli("rootseg.predict", f"input={tmp_path}", f"output={tmp_path / 'out'}")
    assert run.returncode == 2, run.stderr[-2000:]
    assert "error: ckpt_path is required" in run.stderr and "Traceback" not in run.stderr


def test_resume_from_a_mistyped_run_directory_is_refused_by_name(tmp_path, synthetic_dir):
    """Hydra creates hydra.run.dir before rootseg runs: a directory holding only what this launch wrote
    (.hydra/, the log) did not exist, so `ckpt_path=last` there is a typo, not a requeued job."""
    typo = tmp_path / "runs" / "2026-11-22_10-00-0O"
    run = _cli(
        "rootseg.train",
        "+experiment=unet_demo",
        "data=folder",
        f"data.root={synthetic_dir}",
        "debug=fdr",
        "ckpt_path=last",
        f"hydra.run.dir={typo}",
    )
    assert run.returncode == 2, run.stderr[-2000:]
    assert f"error: ckpt_path=last: the run directory {typo} did not exist" in run.stderr
    assert "hydra.run.dir" in run.stderr and "Traceback" not in run.stderr
    assert sorted(p.name for p in typo.iterdir()) == [".hydra", "train.log"]  # nothing written by rootseg
    from rootseg.tasks.fit import train

    with pytest.raises(FileNotFoundError, match=f"run directory {tmp_path / 'absent'} did not exist"):
        train(compose_run("train", [*TINY_TRAIN, f"data.root={synthetic_dir}", "ckpt_path=last"], tmp_path / "absent"))
    assert not (tmp_path / "absent").exists()


def test_resume_without_last_checkpoint_starts_afresh_naming_the_folder(tmp_path, synthetic_dir, caplog):
    """A SLURM job requeued before its first checkpoint: the run directory exists, last.ckpt does not."""
    from rootseg.tasks.fit import train

    run_dir = tmp_path / "requeued"
    run_dir.mkdir()
    (run_dir / "config_resolved.yaml").write_text("seed: 42\n")  # written by the first attempt
    args = ["+experiment=unet_demo", "data=folder", f"data.root={synthetic_dir}", "debug=fdr", "logger=csv"]
    with caplog.at_level("WARNING", logger="rootseg.tasks.fit"):
        metrics = train(compose_run("train", [*args, "ckpt_path=last"], run_dir))
    assert f"searched {run_dir / 'checkpoints'} for last.ckpt and found none (the folder does not exist)" in caplog.text
    assert "starting from scratch" in caplog.text and "test/f1" in metrics


def test_incompatible_checkpoint_names_the_file_and_the_mismatch(tmp_path, tiny_checkpoint):
    checkpoint = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    name = next(k for k, v in checkpoint["state_dict"].items() if v.ndim == 4)
    checkpoint["state_dict"][name] = torch.zeros(1, 1, 1, 1)
    bad = tmp_path / "other net.ckpt"
    torch.save(checkpoint, bad)
    run = _cli("rootseg.eval", f"ckpt_path='{bad}'", "hydra.run.dir=" + str(tmp_path / "eval"))
    assert run.returncode == 2, run.stderr[-2000:]
    assert "other net.ckpt: weights do not fit" in run.stderr and "Traceback" not in run.stderr
    with pytest.raises(CheckpointLoadError, match="a 'unet' checkpoint, but this command needs a 'rootsam' one"):
        load_module(tiny_checkpoint, expected_kind="rootsam")


def test_unwritable_or_full_run_directory_is_refused_before_training(tmp_path, synthetic_dir):
    from rootseg.io.disk import OSErrorNoSpace
    from rootseg.tasks.fit import train

    args = [*TINY_TRAIN, f"data.root={synthetic_dir}"]
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        train(compose_run("train", args, Path("/dev/null/run")))
    with pytest.raises(OSErrorNoSpace, match="min_free_disk_mb"):
        train(compose_run("train", [*args, "min_free_disk_mb=1e12"], tmp_path / "full"))
    assert not (tmp_path / "full" / "checkpoints").exists()
    if os.geteuid() != 0:  # root writes through 0o500
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(PermissionError, match="not writable"):
            train(compose_run("train", args, locked / "run"))


def _nan_on_batch(monkeypatch, bad_batch: int) -> None:
    from rootseg.tasks.base import RootSegModule

    original = RootSegModule.checked_loss

    def poisoned(self, loss, batch_idx):
        return original(self, loss * float("nan") if batch_idx == bad_batch else loss, batch_idx)

    monkeypatch.setattr(RootSegModule, "checked_loss", poisoned)


def test_nonfinite_loss_skip_keeps_weights_finite(tmp_path, synthetic_dir, monkeypatch, caplog):
    from rootseg.tasks.fit import train

    _nan_on_batch(monkeypatch, 1)
    args = [*TINY_TRAIN, f"data.root={synthetic_dir}", "trainer.max_epochs=1", "model.nonfinite_loss=skip"]
    with caplog.at_level("WARNING"):
        metrics = train(compose_run("train", args, tmp_path / "skip"))
    assert "global step 1, batch 1: batch skipped" in caplog.text
    best = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=False)
    assert all(torch.isfinite(v).all() for v in best["state_dict"].values() if v.is_floating_point())
    assert np.isfinite(metrics["val/f1"])


def test_nonfinite_loss_stop_names_the_batch(tmp_path, synthetic_dir, monkeypatch):
    from rootseg.tasks.fit import train

    _nan_on_batch(monkeypatch, 1)
    args = [*TINY_TRAIN, f"data.root={synthetic_dir}", "trainer.max_epochs=1", "model.nonfinite_loss=stop"]
    with pytest.raises(FloatingPointError, match="epoch 0, global step 1, batch 1"):
        train(compose_run("train", args, tmp_path / "stop"))


def test_nan_monitor_is_never_the_best_checkpoint():
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import ModelCheckpoint

    trainer = SimpleNamespace(strategy=SimpleNamespace(reduce_boolean_decision=lambda decision, **_: decision))
    callback = ModelCheckpoint(monitor="val/f1", mode="max", save_top_k=1)
    callback.best_k_models = {"a.ckpt": torch.tensor(0.2)}
    callback.kth_best_model_path = "a.ckpt"
    assert not callback.check_monitor_top_k(trainer, current=torch.tensor(float("nan")))
    assert callback.check_monitor_top_k(trainer, current=torch.tensor(0.3))


def test_training_without_the_data_check_stops_at_a_corrupt_image_naming_it(tmp_path):
    """check_data=false (the default): the run still stops with the file's name, not a bare traceback."""
    from rootseg.synthetic.dataset import write_dataset

    folder = write_dataset(tmp_path / "set", n=6, size=(300, 300), seed=3)
    broken = sorted((folder / "images").glob("*.png"))[2]
    broken.write_bytes(b"not a png at all")
    run = _cli(
        "rootseg.train",
        "+experiment=unet_demo",
        "data=folder",
        f"data.root={folder}",
        "debug=fdr",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert run.returncode != 0
    assert f"error: {broken}: cannot decode image" in run.stderr
    assert "Traceback" not in run.stderr
