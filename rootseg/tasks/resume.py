"""Resuming a run (`ckpt_path=last` or a file): which checkpoint, whether it is whole, and keeping the earlier logs.

A last.ckpt can be damaged although it is written atomically: copied off a cluster's scratch disk half-way,
a bit flipped on a failing disk, a quota hit by a tool outside rootseg. Resuming from it ended in Lightning's
RuntimeError after metrics.csv had already been renamed. Now every candidate is read whole (each zip member's
CRC, then the pickle) before the run starts; a damaged last.ckpt gives way to the newest whole checkpoint of
the run's checkpoints/ with a warning naming it, and the earlier metrics.csv, set aside as the loggers start,
is put back unless Lightning has restored the checkpoint (`earlier_logs_kept`), so a failed resume loses nothing.
"""

from __future__ import annotations

import contextlib
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import torch

log = logging.getLogger(__name__)

#: what a launch writes into its run directory before train() runs: Hydra's config copy and the log file
_LAUNCH_FILES = (".hydra",)
#: what Lightning needs in a checkpoint to go on training where it stopped
_TRAINING_STATE = ("state_dict", "optimizer_states", "epoch", "loops")


class DamagedCheckpointError(ValueError):
    """A checkpoint named for a resume cannot be read whole; a ValueError, so the commands print it as one paragraph."""


def _is_new_run_dir(run_dir: Path) -> bool:
    """Whether the run directory did not exist before this launch: absent, or holding only what Hydra wrote
    just now (`.hydra/`, the log file); any earlier rootseg run left its config_resolved.yaml at least."""
    if not run_dir.is_dir():
        return True
    return all(p.name in _LAUNCH_FILES or p.suffix == ".log" for p in run_dir.iterdir())


def checkpoint_problem(path: Path) -> str | None:
    """Why `path` cannot be resumed from (truncated, corrupt, not a training checkpoint), or None if it can.

    Reads every byte (zip CRCs) but memory-maps the tensors, so a large checkpoint costs one read, not twice
    its size in memory."""
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
        if broken is not None:
            return f"its member {broken} fails its checksum"
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except (zipfile.BadZipFile, EOFError) as error:
        return f"it is truncated or not a checkpoint ({error})"
    except Exception as error:  # torch's unpickling raises RuntimeError, UnpicklingError, ... on damage
        return f"it cannot be read ({type(error).__name__}: {error})"
    if not isinstance(checkpoint, dict):
        return "it holds no training state"
    missing = [key for key in _TRAINING_STATE if key not in checkpoint]
    if missing:
        return f"it lacks {', '.join(missing)} (a weights-only or exported file, not a training checkpoint)"
    return None


def _newest_whole(folder: Path, damaged: Path) -> Path | None:
    """The most recently written checkpoint of `folder` that reads whole, other than `damaged`."""
    candidates = sorted(
        (p for p in folder.glob("*.ckpt") if p.name != damaged.name), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for candidate in candidates:
        problem = checkpoint_problem(candidate)
        if problem is None:
            return candidate
        log.warning("checkpoint %s is damaged too (%s); not resuming from it", candidate, problem)
    return None


def _last_checkpoint(run_dir: Path) -> str | None:
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
    problem = checkpoint_problem(last)
    if problem is None:
        return str(last)
    fallback = _newest_whole(folder, last)
    if fallback is None:
        raise DamagedCheckpointError(
            f"ckpt_path=last: {last} is damaged ({problem}) and no other checkpoint in {folder} reads whole. "
            "Restore the file from a backup, or drop ckpt_path=last to start the run again."
        )
    log.warning(
        "ckpt_path=last: %s is damaged (%s); resuming from %s, the newest whole checkpoint of the run, instead "
        "(the epochs after it are trained again)",
        last,
        problem,
        fallback,
    )
    return str(fallback)


def resume_path(ckpt_path: str | None, run_dir: Path) -> str | None:
    """The checkpoint a `ckpt_path=` setting resumes from, read whole; None for a fresh start."""
    if ckpt_path in (None, ""):
        return None
    if ckpt_path == "last":
        return _last_checkpoint(run_dir)
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint file")
    problem = checkpoint_problem(path)
    if problem is not None:
        raise DamagedCheckpointError(f"ckpt_path={ckpt_path}: cannot resume from {path}: {problem}")
    return str(path)


def keep_earlier_logs(run_dir: Path) -> list[tuple[Path, Path]]:
    """The CSV logger deletes metrics.csv when it starts; on resume keep the earlier rows beside it, as
    metrics_part<N>.csv. Returns (original, kept) for each file moved."""
    moved = []
    for metrics in run_dir.glob("csv/metrics.csv"):
        part = 1
        while (kept := metrics.with_name(f"metrics_part{part}.csv")).exists():
            part += 1
        metrics.rename(kept)
        moved.append((metrics, kept))
    return moved


class _Restored(L.Callback):
    """Notes that Lightning has restored the checkpoint: train start comes after weights, optimizer and loops."""

    def __init__(self) -> None:
        self.done = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.done = True


@contextlib.contextmanager
def earlier_logs_kept(trainer: L.Trainer, run_dir: Path, resuming: bool) -> Iterator[None]:
    """Around the loggers' start and `trainer.fit` of a resumed run: metrics.csv is set aside first (Lightning's
    CSV logger deletes it as it starts) and put back unless the checkpoint has loaded, so a resume that fails
    (a checkpoint of another net, another optimizer) leaves the run directory as it found it."""
    if not resuming or not trainer.is_global_zero:
        yield
        return
    restored = _Restored()
    trainer.callbacks.append(restored)
    moved = keep_earlier_logs(Path(run_dir))
    try:
        yield
    except BaseException:
        if not restored.done:
            for original, kept in moved:
                if not original.exists():
                    kept.rename(original)
        raise
