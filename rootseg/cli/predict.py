"""`python -m rootseg.predict ckpt_path=CKPT input=DIR_OR_GLOB output=DIR`: segment a folder of scans
(`rootseg.inference.folder`); exits 1 when an image could not be read, 2 on a wrong setting."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from rootseg.cli import errors
from rootseg.config.run_config import CONFIG_DIR
from rootseg.inference.folder import predict


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    with errors.user_errors():
        summary = predict(cfg)
    if summary["failed"]:
        sys.exit(1)


def entry() -> None:
    """The `rootseg-predict` console script: `python -m rootseg.predict` with its error hints."""
    errors.run(main, "predict")


if __name__ == "__main__":
    entry()
