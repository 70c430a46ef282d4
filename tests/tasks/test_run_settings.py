"""Run settings that misled: max_epochs=-1 (no end), debug=overfit (tiles redrawn every epoch; crashed RootSAM),
and the Optuna objective (the last epoch's val/f1 instead of the best checkpoint's)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from conftest import TINY_TRAIN, child_env, compose_run, run_rootseg
from omegaconf import OmegaConf
from probes import BatchProbe

from rootseg.tasks.fit import check_run_length, optimized_value


# -- max_epochs=-1 ---------------------------------------------------------------------------------------------
def test_no_epoch_limit_needs_an_end():
    with pytest.raises(ValueError, match=r"max_epochs=-1 trains until the process is killed.*trainer.max_time="):
        check_run_length(OmegaConf.create({"max_epochs": -1, "max_time": None, "max_steps": -1}))
    with pytest.raises(ValueError, match=r"trainer.max_epochs=-3: give the number of epochs"):
        check_run_length(OmegaConf.create({"max_epochs": -3}))
    with pytest.raises(ValueError, match=r"trainer.max_epochs=0"):
        check_run_length(OmegaConf.create({"max_epochs": 0}))
    check_run_length(OmegaConf.create({"max_epochs": -1, "max_time": "00:12:00:00", "max_steps": -1}))
    check_run_length(OmegaConf.create({"max_epochs": -1, "max_time": None, "max_steps": 5000}))
    check_run_length(OmegaConf.create({"max_epochs": 1}))
    check_run_length(OmegaConf.create({"max_epochs": -1, "fast_dev_run": True}))


def test_cli_refuses_max_epochs_minus_one_before_writing_anything(tmp_path):
    args = ["+experiment=unet_demo", "trainer.max_epochs=-1", f"hydra.run.dir={tmp_path / 'run'}"]
    env = child_env(HYDRA_FULL_ERROR="0")
    run = run_rootseg("train", [*args, f"paths.data_dir={tmp_path / 'data'}"], timeout=120, env=env, check=False)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "error: trainer.max_epochs=-1 trains until the process is killed" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "run" / "config_resolved.yaml").exists()


def test_max_time_is_a_setting_without_plus(compose):
    cfg = compose("train", ["+experiment=unet_demo", "trainer.max_epochs=-1", "trainer.max_time=00:00:10:00"])
    check_run_length(cfg.trainer)
    assert cfg.trainer.max_time == "00:00:10:00" and cfg.trainer.max_steps == -1


# -- debug=overfit ---------------------------------------------------------------------------------------------
def _overfit(overrides: list[str], run_dir) -> tuple[dict, dict]:
    from rootseg.tasks.fit import train

    BatchProbe.batches, BatchProbe.losses = {}, {}
    probe = ["+callbacks.batch_probe._target_=probes.BatchProbe", "test=false", "logger=csv"]
    train(compose_run("train", [*overrides, "debug=overfit", *probe], run_dir))
    return BatchProbe.batches, BatchProbe.losses


@pytest.mark.slow
def test_unet_overfit_sees_the_same_batches_every_epoch_and_its_loss_falls(tmp_path, synthetic_dir):
    """~20 s on two idle cores; the fast check of the same settings is test_overfit_fixes_the_batches_..."""
    overrides = [*TINY_TRAIN, f"data.root={synthetic_dir}", "trainer.max_epochs=6", "data.batch_size=2"]
    batches, losses = _overfit([*overrides, "model.optimizer.lr=0.02"], tmp_path)
    assert sorted(batches) == list(range(6))
    assert all(len(batches[e]) == 2 for e in batches)
    assert all(batches[e] == batches[0] for e in batches), "tiles redrawn between epochs: nothing to overfit"
    first, last = sum(losses[0]) / 2, sum(losses[5]) / 2
    assert last < 0.6 * first, losses


def test_rootsam_overfit_runs_on_fixed_batches_and_its_loss_falls(tmp_path):
    """It used to crash: the debug config set data.train_transform, which the RootSAM datamodule lacks."""
    torch.set_num_threads(1)
    overrides = [
        "+experiment=rootsam_stage1",
        "model/net=sam2.1_micro",
        "data=synthetic",
        "data.source.n=6",
        "data.source.size=[256,256]",
        f"paths.data_dir={tmp_path / 'data'}",
        "data.resize=256",
        "data.tile=128",
        "data.batch_size=2",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "trainer.max_epochs=8",
        "trainer.num_sanity_val_steps=0",
        "trainer.limit_val_batches=1",
        "model.grid_points_per_side=4",
    ]
    batches, losses = _overfit(overrides, tmp_path / "run")
    assert sorted(batches) == list(range(8)) and all(batches[e] == batches[0] for e in batches)
    first, last = sum(losses[0]) / len(losses[0]), sum(losses[7]) / len(losses[7])
    assert last < 0.8 * first, losses


# -- the Optuna objective ---------------------------------------------------------------------------------------
def test_sweep_objective_is_the_best_checkpoints_score_not_the_last_epochs(tmp_path, synthetic_dir):
    from rootseg.tasks.fit import train

    spoil = "+callbacks.spoil._target_=probes.SpoilLastValidation"
    overrides = [*TINY_TRAIN, f"data.root={synthetic_dir}", "trainer.max_epochs=3", "test=false", spoil]
    metrics = train(compose_run("train", overrides, tmp_path))
    logged = pd.read_csv(tmp_path / "csv" / "metrics.csv")["val/f1"].dropna().tolist()
    assert len(logged) == 3 and logged[-1] == 0.0 and max(logged) > 0.0
    assert metrics["val/f1"] == 0.0  # what the objective used to be
    objective = optimized_value(metrics, "val/f1")
    assert objective == pytest.approx(max(logged), abs=1e-6)
    best = next((tmp_path / "checkpoints").glob("epoch_*.ckpt"))  # epoch_<e>-f1_<val/f1 to 4 places>.ckpt
    assert objective == pytest.approx(float(best.stem.split("f1_")[1]), abs=1e-4)
    # a metric no checkpoint monitors is its last value; an absent one is None
    assert optimized_value({"val/loss": 0.3, "best_scores": {"val/f1": 0.9}}, "val/loss") == 0.3
    assert optimized_value({"best_scores": {}}, "val/f1") is None and optimized_value(metrics, None) is None


def test_overfit_fixes_the_batches_of_every_experiment(compose):
    """An experiment is merged after debug=... (it is appended by +experiment=), so none may set what
    debug=overfit needs: fixed loaders, and no U-Net-only key that another datamodule lacks."""
    from pathlib import Path

    from rootseg.config.run_config import CONFIG_DIR

    for experiment in sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml")):
        cfg = compose("train", [f"+experiment={experiment}", "debug=overfit"])
        assert cfg.trainer.overfit_batches == 2, experiment
        if experiment != "frangi_cmaes":  # tuned, not trained: it has no batches to fix
            assert cfg.trainer.reload_dataloaders_every_n_epochs == 0, experiment
