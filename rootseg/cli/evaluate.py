"""`python -m rootseg.eval ckpt_path=CKPT [data=...]`: tables and figures of a checkpoint (`rootseg.evaluation.run`)."""

from __future__ import annotations

import math

import hydra
from omegaconf import DictConfig

from rootseg.cli import errors
from rootseg.config.run_config import CONFIG_DIR
from rootseg.evaluation.run import evaluate


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> float:
    with errors.user_errors():
        result = evaluate(cfg)
    return float(result["pooled"]["f1"]) if not math.isnan(result["pooled"]["f1"]) else 0.0


def entry() -> None:
    """The `rootseg-eval` console script: `python -m rootseg.eval` with its error hints."""
    errors.run(main, "eval")


if __name__ == "__main__":
    entry()
