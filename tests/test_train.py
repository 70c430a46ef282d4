"""The training entry point end to end on CPU, in-process and as users run it."""

import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
from conftest import REPO, TINY_TRAIN, compose_run

from rootseg.modules.loading import CheckpointLoadError, load_module


def test_cli_fast_dev_run_of_the_demo_experiment(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rootseg.train",
            "+experiment=unet_demo",
            "debug=fdr",
            "data.source.n=6",
            "data.source.size=[160,160]",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "run directory:" in run.stdout and "test/f1=" in run.stdout
    assert (tmp_path / "run" / "config_resolved.yaml").is_file()
    assert len(list((tmp_path / "data" / "synthetic").glob("*/images/*.png"))) == 6


def test_training_writes_checkpoints_logs_and_metrics(tiny_checkpoint):
    run_dir = tiny_checkpoint.parents[1]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    logged = pd.read_csv(run_dir / "csv" / "metrics.csv")
    assert {"train/loss_epoch", "val/f1", "test/f1"} <= set(logged.columns)
    assert logged["val/f1"].notna().sum() == 2  # one validation per epoch


def test_checkpoint_rebuilds_the_model_alone(tiny_checkpoint):
    module = load_module(tiny_checkpoint)
    assert module.kind == "unet" and module.tile_out == module.net.output_size(module.tile_in)
    state = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    for key, value in module.state_dict().items():
        assert torch.equal(value, state[key])
    with pytest.raises(CheckpointLoadError, match="wrong model type|needs a 'rootsam'"):
        load_module(tiny_checkpoint, expected_kind="rootsam")


def test_load_errors_say_what_to_do(tmp_path):
    with pytest.raises(CheckpointLoadError, match="not found"):
        load_module(tmp_path / "missing.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointLoadError, match="not a readable"):
        load_module(tmp_path / "junk.ckpt")
    torch.save({"model": {}}, tmp_path / "sam.pt")
    with pytest.raises(CheckpointLoadError, match="model.net.ckpt_path"):
        load_module(tmp_path / "sam.pt")


def test_same_seed_gives_the_same_metrics(tmp_path, synthetic_dir):
    from rootseg.train import train

    overrides = [
        *TINY_TRAIN,
        f"data.root={synthetic_dir}",
        "trainer.max_epochs=1",
        "logger=csv",
        "trainer.deterministic=true",
    ]
    first = train(compose_run("train", overrides, tmp_path / "a"))
    second = train(compose_run("train", overrides, tmp_path / "b"))
    assert first["test/f1"] == pytest.approx(second["test/f1"], abs=1e-6)
    assert first["val/f1"] == pytest.approx(second["val/f1"], abs=1e-6)


@pytest.mark.realdata
def test_fast_dev_run_on_real_segroot_images(tmp_path, segroot):
    """The paper's experiment on the real images, with the tiny net so it fits the fast suite."""
    from rootseg.train import train

    cfg = compose_run(
        "train",
        [
            "+experiment=unet_smith2020",
            "data=segroot",
            f"data.root={segroot}",
            "debug=fdr",
            "model/net=unet_tiny",
            "data.tile_in=276",
            "data.tile_out=188",
            "logger=csv",
        ],
        tmp_path,
    )
    metrics = train(cfg)
    assert 0 <= metrics["test/f1"] <= 1


@pytest.mark.slow
@pytest.mark.realdata
def test_smith2020_fast_dev_run_on_real_segroot_images(tmp_path, segroot):
    """As in the README: the full 31 M-parameter U-Net, one batch, one val and one test image."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rootseg.train",
            "+experiment=unet_smith2020",
            "data=segroot",
            f"data.root={segroot}",
            "debug=fdr",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert run.returncode == 0, run.stderr[-3000:]
