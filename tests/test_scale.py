"""Scale and tracking: DDP on two CPU processes, multirun and Optuna sweeps, W&B offline, SLURM config,
and resuming a killed run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, compose_run

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
SMALL = [
    "+experiment=unet_demo",
    "data=folder",
    "data.max_tiles_per_image=2",
    "data.batch_size=4",
    "trainer.enable_progress_bar=false",
]


def _train(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [sys.executable, "-m", "rootseg.train", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    return run


def _last_val_f1(run_dir: Path) -> float:
    logged = pd.read_csv(run_dir / "csv" / "metrics.csv")
    return float(logged["val/f1"].dropna().iloc[-1])


def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path, synthetic_dir):
    run_dir = tmp_path / "ddp"
    _train(
        [
            *SMALL,
            f"data.root={synthetic_dir}",
            "trainer=ddp_sim",
            "trainer.max_epochs=1",
            "test=false",
            f"hydra.run.dir={run_dir}",
        ]
    )
    ddp_f1 = _last_val_f1(run_dir)
    # the same weights validated in one process over the same images
    from lightning import Trainer

    from rootseg.modules.loading import load_module

    cfg = compose_run("train", [*SMALL, f"data.root={synthetic_dir}"], tmp_path / "single")
    import hydra

    module = load_module(run_dir / "checkpoints" / "last.ckpt")
    datamodule = hydra.utils.instantiate(cfg.data)
    result = Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False).validate(
        module, datamodule=datamodule
    )[0]
    assert ddp_f1 == pytest.approx(result["val/f1"], abs=1e-6)
    assert len(list((run_dir / "checkpoints").glob("*.ckpt"))) == 2  # best + last, written once (rank 0)


def test_multirun_writes_one_directory_per_trial(tmp_path, synthetic_dir):
    _train(["-m", *SMALL, f"data.root={synthetic_dir}", "debug=fdr", "seed=1,2", f"hydra.sweep.dir={tmp_path}"])
    trials = sorted(p for p in tmp_path.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in trials] == ["0", "1"]
    seeds = [yaml.safe_load((p / "config_resolved.yaml").read_text())["seed"] for p in trials]
    assert seeds == [1, 2]


def test_a_crashed_trial_does_not_end_the_sweep(tmp_path, synthetic_dir):
    _train(
        [
            "-m",
            *SMALL,
            f"data.root={synthetic_dir}",
            "debug=fdr",
            "data.tile_out=188,190",
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    assert (tmp_path / "1" / "FAILED.txt").is_file() and "tile_out" in (tmp_path / "1" / "FAILED.txt").read_text()
    assert (tmp_path / "0" / "config_resolved.yaml").is_file() and not (tmp_path / "0" / "FAILED.txt").exists()


def test_optuna_sweep_returns_the_best_value(tmp_path, synthetic_dir):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    _train(
        [
            "-m",
            *SMALL,
            f"data.root={synthetic_dir}",
            "debug=limit",
            "trainer.max_epochs=1",
            "test=false",
            "hparams_search=unet_optuna",
            "model/optimizer=sgd_smith2020",  # the sweep tunes SGD's momentum; unet_demo uses AdamW
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.sampler.n_startup_trials=2",
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    values = [
        float(pd.read_csv(p / "csv" / "metrics.csv")["val/f1"].dropna().iloc[-1])
        for p in tmp_path.iterdir()
        if p.is_dir() and p.name.isdigit()
    ]
    assert len(values) == 2
    assert results["best_value"] == pytest.approx(max(values), abs=1e-6)


def test_wandb_offline_writes_images_table_and_model(tmp_path, synthetic_dir):
    _train(
        [
            *SMALL,
            f"data.root={synthetic_dir}",
            "debug=limit",
            "trainer.max_epochs=1",
            "logger=wandb",
            f"hydra.run.dir={tmp_path}",
        ]
    )
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    files = [p.relative_to(runs[0]).as_posix() for p in runs[0].rglob("*") if p.is_file()]
    assert any("media/images/val/overlays" in f for f in files)
    assert any(f.endswith(".table.json") and "per_image" in f for f in files)
    assert b"val/f1" in next(runs[0].glob("run-*.wandb")).read_bytes()  # the metrics, in W&B's own log


def test_slurm_launcher_config_composes():
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rootseg.train",
            "+experiment=unet_smith2020",
            "hydra/launcher=slurm",
            "trainer=ddp",
            "hydra.launcher.partition=gpu",
            "hydra.launcher.gpus_per_node=4",
            "--cfg",
            "hydra",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    assert run.returncode == 0, run.stderr[-2000:]
    launcher = yaml.safe_load(run.stdout)["hydra"]["launcher"]
    assert launcher["partition"] == "gpu" and launcher["gpus_per_node"] == 4
    assert launcher["_target_"].endswith("SlurmLauncher")


def test_run_killed_mid_epoch_resumes_to_the_same_result(tmp_path, synthetic_dir):
    """SIGKILL once the first epoch's checkpoint exists; the resumed run ends where an uninterrupted one does."""
    args = [
        *SMALL,
        f"data.root={synthetic_dir}",
        "trainer.max_epochs=3",
        "data.max_tiles_per_image=4",
        "trainer.deterministic=true",
        "test=false",
    ]
    _train([*args, f"hydra.run.dir={tmp_path / 'whole'}"])
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "rootseg.train", *args, f"hydra.run.dir={killed}"],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while not (killed / "checkpoints" / "last.ckpt").exists() and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (killed / "checkpoints" / "last.ckpt").exists()
    _train([*args, f"hydra.run.dir={killed}", "ckpt_path=last"])
    whole = pd.read_csv(tmp_path / "whole" / "csv" / "metrics.csv")["val/f1"].dropna()
    resumed = pd.read_csv(killed / "csv" / "metrics.csv")["val/f1"].dropna()
    assert len(whole) == 3
    assert resumed.iloc[-1] == pytest.approx(whole.iloc[-1], abs=1e-6)
