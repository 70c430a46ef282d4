"""Scale and tracking: DDP on two CPU processes, multirun and Optuna sweeps, W&B offline, SLURM config,
and resuming a killed run."""

import base64
import functools
import hashlib
import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import child_env, compose_run, fake_ddp_trainer, kill_and_resume, run_rootseg

# tests/faulty_loss.py for `model.loss._target_` in the DDP test
ENV = child_env(OMP_NUM_THREADS="1", tests_importable=True)
train_run = functools.partial(run_rootseg, "train", env=ENV)
SMALL = [
    "+experiment=unet_demo",
    "data=folder",
    "data.max_tiles_per_image=2",
    "data.batch_size=4",
    "trainer.enable_progress_bar=false",
]


def _last_val_f1(run_dir: Path) -> float:
    logged = pd.read_csv(run_dir / "csv" / "metrics.csv")
    return float(logged["val/f1"].dropna().iloc[-1])


def _wandb_run(run_dir: Path) -> Path:
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    return runs[0]


def _wandb_table(run: Path, key: str) -> dict:
    tables = list((run / "files" / "media" / "table").rglob(f"{key}_*.table.json"))
    assert len(tables) == 1, tables
    return json.loads(tables[0].read_text())


def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path, synthetic_dir):
    """One 2-process (gloo) run checks three things of DDP: the synchronised val/f1 equals one process's on
    the same weights; a NaN loss on rank 1 is skipped (a zero loss there) without Lightning's "returning None
    in distributed training is not supported"; W&B's per-image table and overlays hold every rank's images."""
    run_dir = tmp_path / "ddp"
    run = train_run(
        [
            *SMALL,
            f"data.root={synthetic_dir}",
            "trainer=ddp_sim",
            "trainer.max_epochs=1",
            "test=false",
            "model.loss._target_=faulty_loss.NaNOnceOnRank",
            "+model.loss.rank=1",
            "logger=[csv,wandb]",
            f"hydra.run.dir={run_dir}",
        ]
    )
    output = run.stdout + run.stderr
    assert "rank 1 of 2, epoch 0, global step 0, batch 0: its gradients are zero on this rank (DDP)" in output
    assert "rank 0 of 2" not in output
    ddp_f1 = _last_val_f1(run_dir)
    # the same weights validated in one process over the same images
    from lightning import Trainer

    from rootseg.tasks.checkpoints import load_module

    cfg = compose_run("train", [*SMALL, f"data.root={synthetic_dir}"], tmp_path / "single")
    import hydra

    module = load_module(run_dir / "checkpoints" / "last.ckpt")
    state = module.state_dict()
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    datamodule = hydra.utils.instantiate(cfg.data)
    result = Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False).validate(
        module, datamodule=datamodule
    )[0]
    assert ddp_f1 == pytest.approx(result["val/f1"], abs=1e-6)
    assert len(list((run_dir / "checkpoints").glob("*.ckpt"))) == 2  # best + last, written once (rank 0)
    # W&B: each rank validated half of the images; the table and the overlays hold all of them, once
    val_names = json.loads((synthetic_dir / "split.json").read_text())["val"]
    assert len(val_names) >= 2
    wandb_run = _wandb_run(run_dir)
    table = _wandb_table(wandb_run, "per_image")
    names = [row[table["columns"].index("name")] for row in table["data"]]
    assert sorted(names) == sorted(val_names)
    overlays = list((wandb_run / "files" / "media" / "images" / "val").glob("overlays_*.png"))
    assert len(overlays) == len(val_names)


@pytest.mark.parametrize(("world", "max_tiles"), [(2, 3), (3, 1)])
def test_ddp_shards_training_tiles_and_eval_images_without_repeats_or_drops(compose, synthetic_dir, world, max_tiles):
    """`world` ranks, each with its own data module as under DDP, their loaders prepared by Lightning's own
    code (_DataConnector._prepare_dataloader: a DistributedSamplerWrapper around the training sampler, our
    UnrepeatedDistributedSampler kept for validation and test). 8 training images x 1 tile on 3 ranks needs
    the top-up (9 tiles); 2 validation images on 3 ranks leave the third rank a placeholder (which counts
    in no metric: tests/test_train.py), without which Lightning's sampler fails and DDP could hang."""
    import hydra
    from lightning.pytorch.trainer.connectors.data_connector import _DataConnector
    from lightning.pytorch.trainer.states import RunningStage
    from lightning.pytorch.utilities.data import _is_dataloader_shuffled
    from torch.utils.data import DistributedSampler

    overrides = [*SMALL, f"data.root={synthetic_dir}", f"data.max_tiles_per_image={max_tiles}", "data.batch_size=3"]
    cfg = compose("train", overrides)
    natural = hydra.utils.instantiate(cfg.data)
    natural.setup("fit")
    drawn = natural.draw_corners(0)  # one process: no top-up
    tiles, indices, batches = [], [], []
    names: dict[str, list[str]] = {"val": [], "test": []}
    placeholders = {"val": 0, "test": 0}
    for rank in range(world):
        datamodule = hydra.utils.instantiate(cfg.data)
        datamodule.trainer = trainer = fake_ddp_trainer(rank, world)
        datamodule.setup("fit")
        connector = _DataConnector(trainer)
        loader = datamodule.train_dataloader()
        assert not isinstance(loader.sampler, DistributedSampler)  # so Lightning shards it
        loader = connector._prepare_dataloader(
            loader, shuffle=_is_dataloader_shuffled(loader), mode=RunningStage.TRAINING
        )
        tiles.append(loader.dataset.corners)
        indices.append(list(loader.sampler))
        batches.append(len(loader))
        for split, stage in (("val", RunningStage.VALIDATING), ("test", RunningStage.TESTING)):
            datamodule.setup(split if split == "test" else "fit")
            loader = getattr(datamodule, f"{split}_dataloader")()
            assert isinstance(loader.sampler, DistributedSampler)  # Lightning keeps it as it is
            loader = connector._prepare_dataloader(loader, shuffle=False, mode=stage)
            items = [loader.dataset[i] for i in loader.sampler]
            assert items, f"rank {rank} has no {split} image: the other ranks would wait for it"
            names[split] += [item["name"] for item in items if not item.get("placeholder")]
            placeholders[split] += sum(bool(item.get("placeholder")) for item in items)
    # training: every rank drew the same tiles (those of one process, topped up to a multiple of the ranks)
    assert all(t == tiles[0] for t in tiles) and tiles[0][: len(drawn)] == drawn
    total = len(tiles[0])
    assert total % world == 0 and len(drawn) <= total < len(drawn) + world
    assert total > len(drawn) if len(drawn) % world else total == len(drawn)
    # each tile on exactly one rank, none dropped, equal shares and batch counts (no rank waits at all-reduce)
    assert sorted(i for part in indices for i in part) == list(range(total))
    assert all(len(part) == total // world for part in indices)
    assert len(set(batches)) == 1
    # validation and test: every image on exactly one rank; a rank beyond the images gets a placeholder
    split = json.loads((synthetic_dir / "split.json").read_text())
    for name in ("val", "test"):
        assert sorted(names[name]) == sorted(split[name]), name
        assert placeholders[name] == max(0, world - len(split[name]))


def test_multirun_writes_one_directory_per_trial(tmp_path, synthetic_dir):
    train_run(["-m", *SMALL, f"data.root={synthetic_dir}", "debug=fdr", "seed=1,2", f"hydra.sweep.dir={tmp_path}"])
    trials = sorted(p for p in tmp_path.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in trials] == ["0", "1"]
    seeds = [yaml.safe_load((p / "config_resolved.yaml").read_text())["seed"] for p in trials]
    assert seeds == [1, 2]


def test_a_crashed_trial_does_not_end_the_sweep(tmp_path, synthetic_dir):
    train_run(
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
    train_run(
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


def _md5_base64(path: Path) -> str:
    return base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()


def test_wandb_offline_writes_images_table_and_model(tmp_path, synthetic_dir):
    """W&B offline: overlays, the per-image table, the metrics, and the best checkpoint as artifact
    `model-<run id>` (its file's digest in the run's log); resumed with ckpt_path=last, the same W&B run id."""
    from rootseg.config.run_config import run_id

    args = [*SMALL, f"data.root={synthetic_dir}", "debug=limit", "logger=[csv,wandb]", f"hydra.run.dir={tmp_path}"]
    train_run([*args, "trainer.max_epochs=1"])
    first = _wandb_run(tmp_path)
    files = [p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file()]
    assert any("media/images/val/overlays" in f for f in files)
    assert any(f.endswith(".table.json") and "per_image" in f for f in files)
    log = next(first.glob("run-*.wandb")).read_bytes()
    assert b"val/f1" in log  # the metrics, in W&B's own log
    assert b"tile_in" in log  # the run config
    assert "experiment_name:" in (tmp_path / "csv" / "hparams.yaml").read_text()
    expected_id = run_id(str(tmp_path))
    assert first.name.endswith(f"-{expected_id}")
    best = [p for p in (tmp_path / "checkpoints").glob("epoch_*.ckpt")]
    assert len(best) == 1
    assert f"model-{expected_id}".encode() in log and b"best.ckpt" in log
    assert _md5_base64(best[0]).encode() in log  # the artifact's file is the best checkpoint, byte for byte
    assert _md5_base64(tmp_path / "checkpoints" / "last.ckpt").encode() not in log

    train_run([*args, "trainer.max_epochs=2", "ckpt_path=last"])  # resume: one more epoch
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(r.name.endswith(f"-{expected_id}") for r in runs)
    resumed = next(r for r in runs if r != first)
    assert next(resumed.glob(f"run-{expected_id}.wandb")).stat().st_size > 0
    assert pd.read_csv(tmp_path / "csv" / "metrics.csv")["epoch"].min() == 1  # it did resume, at epoch 1


def test_slurm_launcher_config_composes():
    slurm = ["hydra/launcher=slurm", "trainer=ddp", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=4"]
    run = train_run(["+experiment=unet_smith2020", *slurm, "--cfg", "hydra"], timeout=120, check=False)
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    assert run.returncode == 0, run.stderr[-2000:]
    launcher = yaml.safe_load(run.stdout)["hydra"]["launcher"]
    assert launcher["partition"] == "gpu" and launcher["gpus_per_node"] == 4
    assert launcher["_target_"].endswith("SlurmLauncher")


@pytest.mark.parametrize("workers", [0, 2])
def test_run_killed_mid_epoch_resumes_to_the_same_result(tmp_path, synthetic_dir, workers):
    """SIGKILL at a point drawn at random after the first checkpoint (epoch 0) and before the run ends: before
    a training step of epoch 1 or 2, or as epoch 1's validation starts. Resumed with ckpt_path=last, it
    continues after the checkpoint's epoch (not from epoch 0: metrics.csv starts later, the killed part's rows
    stay in metrics_part1.csv) and ends with the uninterrupted run's val/f1.

    The kill is placed by the run's own progress (probes.KillAt), so it lands at the same point on an idle or
    a loaded machine; the point is drawn from a seed that changes from run to run (printed;
    ROOTSEG_KILL_SEED=N repeats one). With loader worker processes too: their tiles and augmentation come from
    (seed, epoch, worker), not from state a checkpoint would have to carry."""
    seed = int(os.environ.get("ROOTSEG_KILL_SEED", time.time_ns() % 2**31))
    args = [
        *SMALL,
        f"data.root={synthetic_dir}",
        "trainer.max_epochs=3",
        "data.max_tiles_per_image=4",
        "trainer.deterministic=true",
        "test=false",
        f"data.num_workers={workers}",
    ]

    epoch = kill_and_resume(args, tmp_path, ENV, seed)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole_log = pd.read_csv(whole / "csv" / "metrics.csv")
    resumed_log = pd.read_csv(killed / "csv" / "metrics.csv")
    killed_log = pd.read_csv(killed / "csv" / "metrics_part1.csv")
    # a resume, not a fresh start: the resumed part starts after the checkpoint's epoch, with fewer rows
    assert resumed_log["epoch"].min() == epoch + 1
    assert len(resumed_log) < len(whole_log)
    # the killed part's rows are kept, and agree with the uninterrupted run up to the checkpoint
    kept = killed_log.dropna(subset=["val/f1"]).set_index("epoch")["val/f1"]
    reference = whole_log.dropna(subset=["val/f1"]).set_index("epoch")["val/f1"]
    assert set(range(epoch + 1)) <= set(kept.index)
    for e in range(epoch + 1):
        assert kept[e] == pytest.approx(reference[e], abs=1e-6)
    assert len(reference) == 3
    assert resumed_log["val/f1"].dropna().iloc[-1] == pytest.approx(reference.iloc[-1], abs=1e-6)


@pytest.mark.parametrize(("overrides", "nodes"), [([], 1), (["trainer.num_nodes=2"], 2)])
def test_slurm_nodes_follow_the_trainer(compose, overrides, nodes):
    """One setting (trainer.num_nodes) asks SLURM for the nodes Lightning will span."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    cfg = compose("train", ["+experiment=unet_smith2020", "hydra/launcher=slurm", "trainer=ddp", *overrides])
    assert cfg.hydra.launcher.nodes == nodes == cfg.trainer.num_nodes
    assert compose("train", ["+experiment=unet_smith2020", "hydra/launcher=slurm"]).hydra.launcher.nodes == 1
