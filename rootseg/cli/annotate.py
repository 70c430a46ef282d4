"""`python -m rootseg.annotate project=DIR [ckpt_path=CKPT] [host=... port=... token=...]`: the corrective
annotation web app (`rootseg.annotate.server`, conf/annotate.yaml); exits 2 on a wrong setting."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from rootseg.cli import errors
from rootseg.config.run_config import CONFIG_DIR


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="annotate")
def main(cfg: DictConfig) -> None:
    from rootseg.annotate.server import serve  # Starlette and uvicorn load only for this command

    with errors.user_errors():
        serve(cfg)


def entry() -> None:
    """The `rootseg-annotate` console script: `python -m rootseg.annotate` with its error hints."""
    errors.run(main, "annotate")


if __name__ == "__main__":
    entry()
