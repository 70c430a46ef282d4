"""`python -m rootseg.train +experiment=NAME [overrides]`: fit, then test the best checkpoint (`rootseg.tasks.fit`)."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from rootseg.cli import errors
from rootseg.config.run_config import (
    CONFIG_DIR,
    output_dir,
)
from rootseg.tasks.fit import optimized_value, train

log = logging.getLogger(__name__)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Run one training; in a sweep, a crashed trial is logged and scored NaN so the others go on."""
    try:
        if _in_multirun():
            metrics = train(cfg)
        else:
            with errors.user_errors():
                metrics = train(cfg)
    except Exception as error:
        if not _in_multirun():
            raise
        log.exception("trial failed; the sweep goes on")
        (output_dir(cfg) / "FAILED.txt").write_text(f"{type(error).__name__}: {error}\n")
        return float("nan")
    return optimized_value(metrics, cfg.get("optimized_metric"))


def entry() -> None:
    """The `rootseg-train` console script: `python -m rootseg.train` with its error hints."""
    errors.run(main, "train")


if __name__ == "__main__":
    entry()
