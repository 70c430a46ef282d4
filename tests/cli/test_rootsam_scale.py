"""RootSAM at scale, as `python -m rootseg.train` runs it (micro SAM 2.1, random weights): DDP on two CPU
processes (gloo) validates every tile once, with W&B's per-tile table and overlays; a run killed with SIGKILL
and resumed replays the uninterrupted one. Slow (subprocess trainings); the fast tests of the same behaviour
are in tests/tasks/test_rootsam_modes.py (ranks' loaders, (seed, epoch) order, records)."""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import child_env, compose_run, kill_and_resume, run_rootseg

pytestmark = pytest.mark.slow
ENV = child_env(OMP_NUM_THREADS="1", tests_importable=True)  # probes.KillAt in the child too
train_run = functools.partial(run_rootseg, "train", env=ENV, timeout=600)


def micro(data_dir: Path, *extra: str) -> list[str]:
    """9 tiles of 128 px per 384 px square; mixed mode scores every tile, so one validation image gives 9
    tiles: an odd count, which Lightning's default sampler would pad with a repeat on 2 ranks."""
    return [
        "+experiment=rootsam_stage1",
        "model/net=sam2.1_micro",
        "model.prompt_mode=mixed",
        "model.optimizer.lr=1e-3",
        "data=synthetic",
        "data.source.n=5",
        "data.source.size=[256,256]",
        f"paths.data_dir={data_dir}",
        "data.resize=384",
        "data.tile=128",
        "data.max_objects=4",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "model.grid_points_per_side=4",
        *extra,
    ]


def test_ddp_validates_every_tile_once_and_wandb_shows_them(tmp_path):
    """Two gloo processes: the synchronised val/f1 and val/promptless_f1 equal one process validating the
    same weights; W&B's per-image table and overlays hold every tile one process scores, exactly once."""
    data_dir = tmp_path / "data"
    run_dir = tmp_path / "ddp"
    args = micro(data_dir, "trainer=ddp_sim", "trainer.max_epochs=1", "trainer.limit_train_batches=2", "test=false")
    train_run([*args, "logger=[csv,wandb]", "callbacks.wandb_dashboard.num_images=100", f"hydra.run.dir={run_dir}"])
    logged = pd.read_csv(run_dir / "csv" / "metrics.csv")
    ddp = {key: float(logged[key].dropna().iloc[-1]) for key in ("val/f1", "val/promptless_f1", "val/patch_miou")}

    import hydra
    from lightning import Trainer

    from rootseg.tasks.checkpoints import load_module

    cfg = compose_run("train", micro(data_dir), tmp_path / "single")
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("validate")
    tiles = [item["name"] for item in datamodule.eval_dataset("val")]
    assert len(tiles) % 2 == 1  # an odd count: the default sampler would repeat one tile on 2 ranks
    module = load_module(run_dir / "checkpoints" / "last.ckpt")
    single = Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False).validate(
        module, datamodule=datamodule
    )[0]
    for key, value in ddp.items():
        assert value == pytest.approx(single[key], abs=1e-6), key

    wandb_run = next((run_dir / "wandb").glob("offline-run-*"))
    table_file = next((wandb_run / "files" / "media" / "table").rglob("per_image_*.table.json"))
    table = json.loads(table_file.read_text())
    names = [row[table["columns"].index("name")] for row in table["data"]]
    # the tiles one process scores (a batch of root-free tiles has no prompted pass, so no record), each once
    scored = sorted(record["name"] for record in module.val_records)
    assert len(set(scored)) == len(scored) and set(scored) <= set(tiles) and len(scored) >= len(tiles) - 2
    assert sorted(names) == scored
    overlays = list((wandb_run / "files" / "media" / "images" / "val").glob("overlays_*.png"))
    assert len(overlays) == len(scored)


def test_killed_rootsam_run_resumes_to_the_same_result(tmp_path):
    """SIGKILL at a point drawn at random after the first checkpoint (probes.KillAt: placed by the run's progress,
    not by a delay, so it lands alike on an idle or a loaded machine); resumed with ckpt_path=last it continues after
    the checkpoint's epoch and ends with the uninterrupted run's val/f1: its tiles, prompts and batch order
    come from (seed, epoch), not from the global RNG a resumed process starts afresh (seed printed;
    ROOTSEG_KILL_SEED=N repeats one)."""
    seed = int(os.environ.get("ROOTSEG_KILL_SEED", time.time_ns() % 2**31))
    data_dir = tmp_path / "data"
    args = micro(data_dir, "trainer.max_epochs=3", "trainer.deterministic=true", "test=false", "logger=csv")

    epoch = kill_and_resume(args, tmp_path, ENV, seed, timeout=600)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole_log = pd.read_csv(whole / "csv" / "metrics.csv")
    resumed_log = pd.read_csv(killed / "csv" / "metrics.csv")
    assert resumed_log["epoch"].min() == epoch + 1  # a resume, not a fresh start
    reference = whole_log.dropna(subset=["val/f1"]).set_index("epoch")["val/f1"]
    assert len(reference) == 3
    assert resumed_log["val/f1"].dropna().iloc[-1] == pytest.approx(reference.iloc[-1], abs=1e-6)
    assert resumed_log["train/loss_epoch"].dropna().iloc[-1] == pytest.approx(
        whole_log["train/loss_epoch"].dropna().iloc[-1], rel=1e-5
    )
