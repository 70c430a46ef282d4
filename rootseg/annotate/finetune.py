"""Fine-tune the current checkpoint on the project's annotations, in the background, and keep it only if better.

`python -m rootseg.train` runs as a child process (a crash or out-of-memory there never takes the app down)
with `model.init_ckpt=CKPT data=rootpainter data.root=PROJECT` and a short schedule. The model must be
rebuilt exactly as the checkpoint describes, so its resolved `model` and `data` settings are written as a
config file `model=annotate_ckpt` in a folder put on Hydra's search path. Progress is read from the run's
`csv/metrics.csv`. When the run ends, the old and the new checkpoint are both scored on annotations/val by
the same code (`ModelService.val_f1`), and the new one replaces the old only when its F1 is higher.
"""

from __future__ import annotations

import csv
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rootseg.annotate import backend
from rootseg.annotate.project import RequestError
from rootseg.annotate.service import ModelService

log = logging.getLogger(__name__)

#: the checkpoint's data settings that describe the data *location*, not how the model is fed
_LOCATION_KEYS = ("root", "source")
Launcher = Callable[[Path, Path], list[str]]  # (run dir, checkpoint) -> argv


class Busy(RequestError):
    status = 409


def hydra_quote(value: str | Path) -> str:
    """A path as one Hydra override value, whatever characters it holds (spaces, commas, quotes)."""
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def write_model_config(ckpt: Path, conf_dir: Path) -> str:
    """Write conf_dir/model/annotate_ckpt.yaml (the checkpoint's model and data settings); return the
    data/module its datamodule needs (unet or rootsam)."""
    summary = backend.checkpoint_summary(ckpt)
    config = summary["config"]
    if "model" not in config:
        raise ValueError(f"{ckpt}: the checkpoint holds no model config to rebuild it from")
    data = {k: v for k, v in (config.get("data") or {}).items() if k not in _LOCATION_KEYS}
    module = "rootsam" if str(data.get("_target_", "")).endswith("RootSAMDataModule") else "unet"
    text = OmegaConf.to_yaml(OmegaConf.create({"model": config["model"], "data": data}))
    path = conf_dir / "model" / "annotate_ckpt.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# @package _global_\n# written by rootseg.annotate from " + str(ckpt) + "\n" + text)
    return module


def train_command(
    ckpt: Path, run_dir: Path, location: backend.ProjectLocation, max_epochs: int, overrides: list[str]
) -> list[str]:
    """argv of the fine-tune run (see the module docstring)."""
    conf_dir = run_dir.parent / f"{run_dir.name}_conf"
    module = write_model_config(ckpt, conf_dir)
    return [
        sys.executable,
        "-m",
        "rootseg.train",
        f"hydra.searchpath=[{hydra_quote('file://' + str(conf_dir.resolve()))}]",
        f"hydra.run.dir={hydra_quote(run_dir)}",
        "model=annotate_ckpt",
        f"model.init_ckpt={hydra_quote(ckpt)}",
        "data=rootpainter",
        f"data/module={module}",
        f"data.root={hydra_quote(location.project_file)}",
        f"data.source.dataset_dir={hydra_quote(location.dataset_dir)}",
        f"trainer.max_epochs={int(max_epochs)}",
        "trainer.min_epochs=1",
        "trainer.enable_progress_bar=false",
        "logger=csv",
        "test=false",
        *overrides,
    ]


def read_progress(run_dir: Path) -> list[dict[str, float]]:
    """Validation rows of the run's csv/metrics.csv so far: [{"epoch": e, "val/f1": f}, ...]."""
    path = run_dir / "csv" / "metrics.csv"
    rows: list[dict[str, float]] = []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("val/f1") and row.get("epoch"):
                    rows.append({"epoch": int(float(row["epoch"])), "val/f1": float(row["val/f1"])})
    except (OSError, ValueError, csv.Error):
        pass  # not written yet, or a row half-written: the next poll reads it
    return rows


def best_checkpoint(run_dir: Path) -> Path | None:
    """The run's best checkpoint (ModelCheckpoint on val/f1), else its last one."""
    folder = run_dir / "checkpoints"
    best = sorted(folder.glob("epoch_*.ckpt"), key=lambda p: p.stat().st_mtime)
    if best:
        return best[-1]
    last = folder / "last.ckpt"
    return last if last.is_file() else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


class FineTuner:
    """One fine-tune run at a time; `status()` is what the page polls."""

    def __init__(
        self,
        service: ModelService,
        work_dir: Path,
        max_epochs: int = 5,
        overrides: list[str] | None = None,
        launcher: Launcher | None = None,
    ) -> None:
        self.service = service
        self.work_dir = work_dir
        self.max_epochs = int(max_epochs)
        self.overrides = list(overrides or [])
        self.launcher = launcher
        self.process: subprocess.Popen | None = None
        self.run_dir: Path | None = None
        self.state: dict[str, Any] = {"state": "idle"}
        self._lock = threading.Lock()

    def _check_ready(self) -> backend.Model:
        model = self.service.model
        if model is None or model.kind not in ("unet", "rootsam"):
            raise RequestError("fine-tuning needs a U-Net or RootSAM checkpoint: start with ckpt_path=CKPT")
        splits = list(self.service.project.annotated().values())
        if "train" not in splits or "val" not in splits:
            raise RequestError(
                f"fine-tuning needs at least one annotation saved as train and one as val (now {splits.count('train')}"
                f" train, {splits.count('val')} val): val decides whether the new model is better"
            )
        return model

    def start(self) -> dict[str, Any]:
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                raise Busy("a fine-tune run is already going; wait for it or stop it")
            model = self._check_ready()
            stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
            self.run_dir = self.work_dir / "finetune" / stamp
            self.run_dir.parent.mkdir(parents=True, exist_ok=True)
            location = self.service.project.location
            argv = (self.launcher or self._default_launcher(location))(self.run_dir, model.path)
            env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "HYDRA_FULL_ERROR": "0"}
            env.setdefault("WANDB_MODE", "offline")
            log_path = self.run_dir.parent / f"{stamp}.log"
            with open(log_path, "wb") as log_file:
                self.process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env)
            self.state = {
                "state": "running",
                "run_dir": str(self.run_dir),
                "log": str(log_path),
                "from": str(model.path),
            }
            log.info("fine-tuning %s in %s (pid %d)", model.path, self.run_dir, self.process.pid)
            threading.Thread(target=self._watch, args=(self.process, model), daemon=True).start()
            return self.status()

    def _default_launcher(self, location: backend.ProjectLocation) -> Launcher:
        return lambda run_dir, ckpt: train_command(ckpt, run_dir, location, self.max_epochs, self.overrides)

    def stop(self) -> dict[str, Any]:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
        return self.status()

    def _watch(self, process: subprocess.Popen, old: backend.Model) -> None:
        code = process.wait()
        state = dict(self.state, returncode=code)
        if code != 0:
            tail = Path(state["log"]).read_text(errors="replace").strip().splitlines()[-5:]
            self.state = dict(state, state="failed", message=f"training exited with status {code}: " + " | ".join(tail))
            return
        self.state = dict(state, state="evaluating")
        try:
            self.state = dict(state, **self._compare(old))
        except Exception as error:  # a bad new checkpoint must leave the app on the old one
            log.exception("fine-tune evaluation failed")
            self.state = dict(state, state="failed", message=f"{type(error).__name__}: {error}")

    def _compare(self, old: backend.Model) -> dict[str, Any]:
        assert self.run_dir is not None
        path = best_checkpoint(self.run_dir)
        if path is None:
            return {"state": "failed", "message": f"{self.run_dir}: the run wrote no checkpoint"}
        new = self.service.load(path)
        old_f1, new_f1 = self.service.val_f1(old), self.service.val_f1(new)
        better = old_f1 is not None and new_f1 is not None and new_f1 > old_f1
        if better:
            self.service.swap(new)
        verdict = "better on val: now in use" if better else "not better on val: the old model stays"
        return {
            "state": "done",
            "checkpoint": str(path),
            "old_f1": old_f1,
            "new_f1": new_f1,
            "swapped": better,
            "message": f"new model val F1 {_fmt(new_f1)} vs {_fmt(old_f1)}, {verdict}",
        }

    def status(self) -> dict[str, Any]:
        status = dict(self.state, max_epochs=self.max_epochs)
        if self.run_dir is not None:
            progress = read_progress(self.run_dir)
            status["progress"] = progress
            status["epochs_done"] = len({row["epoch"] for row in progress})
        return status
