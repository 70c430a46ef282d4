"""`python -m rootseg.train +experiment=NAME [overrides]`: fit, then test the best checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig

from rootseg.config.run_config import (
    instantiate_group,
    output_dir,
    resolved_container,
    save_resolved_config,
)
from rootseg.io.disk import check_writable
from rootseg.io.headers import set_pixel_budget

log = logging.getLogger(__name__)


#: what a launch writes into its run directory before train() runs: Hydra's config copy and the log file
_LAUNCH_FILES = (".hydra",)


def _is_new_run_dir(run_dir: Path) -> bool:
    """Whether the run directory did not exist before this launch: absent, or holding only what Hydra wrote
    just now (`.hydra/`, the log file); any earlier rootseg run left its config_resolved.yaml at least."""
    if not run_dir.is_dir():
        return True
    return all(p.name in _LAUNCH_FILES or p.suffix == ".log" for p in run_dir.iterdir())


def _resume_path(ckpt_path: str | None, run_dir: Path) -> str | None:
    if ckpt_path in (None, ""):
        return None
    if ckpt_path == "last":
        if _is_new_run_dir(run_dir):
            raise FileNotFoundError(
                f"ckpt_path=last: the run directory {run_dir} did not exist before this launch (Hydra has just "
                "created it), so there is no run to resume. Check hydra.run.dir: it must be the directory of the "
                "killed run (under logs/train/runs/ by default), or drop ckpt_path=last to start a new run."
            )
        folder = run_dir / "checkpoints"
        last = folder / "last.ckpt"
        if not last.is_file():
            # a SLURM job requeued before its first checkpoint lands here: start it again
            log.warning(
                "ckpt_path=last: searched %s for last.ckpt and found none%s: starting from scratch (expected when "
                "a job is requeued before its first checkpoint; otherwise check hydra.run.dir)",
                folder,
                "" if folder.is_dir() else " (the folder does not exist)",
            )
            return None
        return str(last)
    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint file")
    return ckpt_path


def _keep_earlier_logs(run_dir: Path) -> None:
    """The CSV logger starts metrics.csv afresh; on resume keep the rows of the earlier part beside it."""
    for metrics in run_dir.glob("csv/metrics.csv"):
        part = 1
        while (kept := metrics.with_name(f"metrics_part{part}.csv")).exists():
            part += 1
        metrics.rename(kept)


def _check_data(datamodule: L.LightningDataModule) -> None:
    """Read every file once before hours of training depend on them (rootseg.sources.check)."""
    from rootseg.sources.check import check_source

    report = check_source(datamodule.source)
    log.info("%s", report.text())
    if report.errors:
        raise ValueError(f"the data check found {len(report.errors)} error(s):\n{report.text()}")


def train(cfg: DictConfig) -> dict[str, Any]:
    """Seed, instantiate, fit, test the best checkpoint; return every logged metric."""
    L.seed_everything(cfg.seed, workers=True)
    set_pixel_budget(cfg.get("max_image_pixels"))
    # before anything is written into the run directory: whether it held a run to resume
    resume = _resume_path(cfg.get("ckpt_path"), Path(cfg.paths.output_dir)) if cfg.get("train", True) else None
    check_writable(cfg.paths.output_dir, float(cfg.get("min_free_disk_mb") or 0), "run directory")
    run_dir = output_dir(cfg)
    save_resolved_config(cfg, run_dir)

    datamodule: L.LightningDataModule = hydra.utils.instantiate(cfg.data)
    source = getattr(datamodule, "source", None)
    if source is not None:
        source.check_splits()  # always: cheap, no pixel read (rootseg.sources.splits)
    if cfg.get("check_data"):
        _check_data(datamodule)
    model = hydra.utils.instantiate(cfg.model)
    model.run_config = resolved_container(cfg)
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    metrics: dict[str, Any] = {}
    if cfg.get("train", True) and resume:
        _keep_earlier_logs(run_dir)
    for run_logger in trainer.loggers:  # W&B's run config, TensorBoard's hparams, the CSV logger's hparams.yaml
        run_logger.log_hyperparams(model.run_config)
    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
    if cfg.get("test", True):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not best:
            log.warning("no best checkpoint (fast_dev_run or checkpointing off): testing the current weights")
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=False)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
        metrics["best_checkpoint"] = best
    metrics["run_dir"] = str(run_dir)
    _print_summary(metrics)
    return metrics


def _print_summary(metrics: dict[str, Any]) -> None:
    keys = ["test/f1", "test/precision", "test/recall", "test/iou"]
    shown = "  ".join(f"{k}={metrics[k]:.4f}" for k in keys if k in metrics)
    if shown:
        print(f"\n{shown}")
    if metrics.get("best_checkpoint"):
        print(f"best checkpoint: {metrics['best_checkpoint']}")
    print(f"run directory: {metrics['run_dir']}")
