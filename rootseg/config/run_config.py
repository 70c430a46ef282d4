"""Hydra helpers shared by the entry points: the config folder, saving the resolved config, and
instantiating the list-like groups (callbacks, loggers)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from rootseg.io.atomic import write_text

log = logging.getLogger(__name__)


def run_id(run_dir: str) -> str:
    """A stable id for a run directory: the same directory (a resumed run) gives the same W&B run."""
    import hashlib

    return hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:12]


def wandb_offline() -> bool:
    """W&B goes online only where it can log in: WANDB_MODE=online, or an API key (WANDB_API_KEY or the
    ~/.netrc entry `wandb login` writes); otherwise offline, so a run never waits on a login or a network."""
    import os

    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if mode in ("offline", "dryrun", "disabled"):
        return True
    if mode == "online" or os.environ.get("WANDB_API_KEY"):
        return False
    netrc = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        return "api.wandb.ai" not in netrc.read_text(errors="replace")
    except OSError:
        return True


if not OmegaConf.has_resolver("run_id"):
    OmegaConf.register_new_resolver("run_id", run_id)


if not OmegaConf.has_resolver("wandb_offline"):
    OmegaConf.register_new_resolver("wandb_offline", wandb_offline)


def _config_dir() -> str:
    """rootseg/conf inside an installed wheel (setup.py copies it there), else conf/ at the top of the source
    tree (a checkout, an editable install as the Makefile makes)."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "conf"
    if (packaged / "train.yaml").is_file():
        return str(packaged)
    return str(package.parent / "conf")


#: the Hydra config folder every command composes from
CONFIG_DIR = _config_dir()


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a callbacks/logger group that has a `_target_`; null entries are off."""
    if not group:
        return []
    return [hydra.utils.instantiate(entry) for entry in group.values() if entry and "_target_" in entry]


def resolved_container(cfg: DictConfig) -> dict[str, Any]:
    """The run config as plain data, interpolations filled in, Hydra's own section left out."""
    keys = [key for key in cfg if key != "hydra"]
    return {
        key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
        for key in keys
    }


def save_resolved_config(cfg: DictConfig, output_dir: str | Path) -> Path:
    """The resolved config beside the run's outputs: what actually ran, interpolations filled in."""
    path = Path(output_dir) / "config_resolved.yaml"
    write_text(path, OmegaConf.to_yaml(OmegaConf.create(resolved_container(cfg))))
    return path


def output_dir(cfg: DictConfig) -> Path:
    """The run directory (`paths.output_dir`, Hydra's run dir by default), created if needed."""
    path = Path(cfg.paths.output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def compose_task(config_name: str, overrides: list[str], run_dir: str | Path) -> DictConfig:
    """The config `python -m rootseg.<task> overrides...` would run with, its run directory `run_dir`: for scripts,
    benchmarks and tests that call a task's library function in this process. Hydra's global state is left clear
    (sam2's import and later compositions expect that); its runtime config stays set for `paths`."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
    GlobalHydra.instance().clear()
    return cfg
