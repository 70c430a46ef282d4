"""`python -m rootseg.train +experiment=NAME [overrides]`: fit, then test the best checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig

from rootseg.config import typed
from rootseg.config.run_config import (
    instantiate_group,
    output_dir,
    resolved_container,
    save_resolved_config,
)
from rootseg.io.disk import check_writable
from rootseg.io.headers import set_pixel_budget
from rootseg.tasks.checkpoints import save_weights
from rootseg.tasks.resume import earlier_logs_kept, resume_path

log = logging.getLogger(__name__)


def _check_data(datamodule: L.LightningDataModule) -> None:
    """Read every file once before hours of training depend on them (rootseg.sources.check)."""
    from rootseg.sources.check import check_source

    report = check_source(datamodule.source)
    log.info("%s", report.text())
    if report.errors:
        raise ValueError(f"the data check found {len(report.errors)} error(s):\n{report.text()}")


def check_run_length(trainer_cfg: DictConfig) -> None:
    """Refuse a run with no end: Lightning reads max_epochs=-1 as "train until stopped" and says nothing."""
    max_epochs = trainer_cfg.get("max_epochs")
    max_steps = trainer_cfg.get("max_steps")
    if trainer_cfg.get("fast_dev_run") or max_epochs is None or max_epochs >= 1:
        return
    if max_epochs < -1 or max_epochs == 0:
        raise ValueError(
            f"trainer.max_epochs={max_epochs}: give the number of epochs to train (>= 1), or -1 for no epoch limit "
            "together with trainer.max_time or trainer.max_steps"
        )
    if trainer_cfg.get("max_time") in (None, "") and (max_steps is None or max_steps < 1):
        raise ValueError(
            "trainer.max_epochs=-1 trains until the process is killed: Lightning sets no end and no warning. "
            "Give an end as well, trainer.max_time=DD:HH:MM:SS (e.g. trainer.max_time=00:12:00:00) or "
            "trainer.max_steps=N, or set trainer.max_epochs to a number of epochs."
        )


#: the typed settings of conf/train.yaml (rootseg.config.typed), checked before anything is built
SETTINGS = {
    "seed": typed.Number(whole=True, low=0),
    "train": typed.Bool(),
    "test": typed.Bool(),
    "check_data": typed.Bool(),
    "min_free_disk_mb": typed.Number(low=0, unit="MB", optional=True),
    "max_image_pixels": typed.Number(whole=True, low=1, optional=True),
    "trainer.max_epochs": typed.Number(whole=True, low=-1, optional=True),
    "trainer.max_steps": typed.Number(whole=True, low=-1, optional=True),
    "trainer.check_val_every_n_epoch": typed.Number(whole=True, low=1, optional=True),
    "trainer.accumulate_grad_batches": typed.Number(whole=True, low=1, optional=True),
    "data.batch_size": typed.Number(whole=True, low=1, optional=True),
    "data.num_workers": typed.Number(whole=True, low=0, optional=True),
}


def train(cfg: DictConfig) -> dict[str, Any]:
    """Seed, instantiate, fit, test the best checkpoint; return every logged metric."""
    typed.check(cfg, SETTINGS)
    if cfg.get("train", True):
        check_run_length(cfg.trainer)
    L.seed_everything(cfg.seed, workers=True)
    set_pixel_budget(cfg.get("max_image_pixels"))
    # before anything is written into the run directory: whether it held a run to resume
    resume = resume_path(cfg.get("ckpt_path"), Path(cfg.paths.output_dir)) if cfg.get("train", True) else None
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
    with earlier_logs_kept(trainer, run_dir, resuming=bool(resume)):
        for run_logger in trainer.loggers:  # W&B's run config, TensorBoard's hparams, the CSV logger's hparams.yaml
            run_logger.log_hyperparams(model.run_config)
        if cfg.get("train", True):
            _fit(trainer, model, datamodule, resume, run_dir)
            metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
            metrics["best_scores"] = best_scores(trainer)
    if not cfg.get("train", True) and trainer.is_global_zero:
        # nothing trains (the zero-shot baseline): the weights it tests, as a checkpoint for eval and report
        metrics["checkpoint"] = str(save_weights(model, run_dir / "checkpoints" / "last.ckpt"))
        log.info(
            "train=false: the untrained weights are in %s (python -m rootseg.eval ckpt_path=...)", metrics["checkpoint"]
        )
    if cfg.get("test", True):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not best and cfg.get("train", True):
            log.warning("no best checkpoint (fast_dev_run or checkpointing off): testing the current weights")
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=False)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
        metrics["best_checkpoint"] = best
    metrics["run_dir"] = str(run_dir)
    _print_summary(metrics)
    return metrics


def _fit(trainer: L.Trainer, model: L.LightningModule, datamodule, resume: str | None, run_dir: Path) -> None:
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume)
    except SystemExit:
        if not trainer.interrupted:
            raise
        # Lightning turns Ctrl-C into sys.exit(1) after its own shutdown: make it an interrupt again, with a note
        interrupt = KeyboardInterrupt()
        interrupt.add_note(
            f"interrupted: {run_dir / 'checkpoints' / 'last.ckpt'} holds the last finished epoch; resume with "
            f"ckpt_path=last hydra.run.dir={run_dir}"
        )
        raise interrupt from None
    except OSError as error:  # a full disk or a lost mount: the checkpoints written so far are whole
        error.add_note(
            f"(training stopped; once the disk has room, resume from the last finished epoch with ckpt_path=last "
            f"hydra.run.dir={run_dir})"
        )
        raise


def best_scores(trainer: L.Trainer) -> dict[str, float]:
    """The best value of each monitored metric, as its checkpoint callback saw it (what picked the checkpoint)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    scores = {}
    for callback in trainer.callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.monitor and callback.best_model_score is not None:
            scores[callback.monitor] = float(callback.best_model_score)
    return scores


def optimized_value(metrics: dict[str, Any], metric: str | None) -> float | None:
    """What a sweep optimises: the best checkpoint's value of `metric` when a checkpoint callback monitors it
    (the model the trial keeps), else its last logged value; None when the run logged no such metric."""
    if not metric:
        return None
    best = metrics.get("best_scores", {})
    if metric in best:
        return float(best[metric])
    return float(metrics[metric]) if metric in metrics else None


def _print_summary(metrics: dict[str, Any]) -> None:
    keys = ["test/f1", "test/precision", "test/recall", "test/iou"]
    shown = "  ".join(f"{k}={metrics[k]:.4f}" for k in keys if k in metrics)
    if shown:
        print(f"\n{shown}")
    if metrics.get("best_checkpoint"):
        print(f"best checkpoint: {metrics['best_checkpoint']}")
    if metrics.get("checkpoint"):
        print(f"checkpoint (untrained weights): {metrics['checkpoint']}")
    print(f"run directory: {metrics['run_dir']}")
