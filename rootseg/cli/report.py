"""`python -m rootseg.report runs=[RUN_DIR,...] [output=DIR] [names=[A,...]] [figures=4]`: one table for several
evaluations.

Each RUN_DIR is the output of `python -m rootseg.eval` (summary.json, per_image.csv). Writes comparison.md
and comparison.csv (one row per method, RootSAM Table 1 and Smith et al. Tables 3-4 columns),
f1_per_image.png, when the per-image tables hold root lengths, root_length_agreement.png, and for up to
`figures` images that every run saved a prediction of (rootseg.eval's predictions/), errors_<image>.png:
photo | annotation | each method's error map (Smith et al. Fig. 7-9).
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from rootseg.cli import errors
from rootseg.config import typed
from rootseg.config.run_config import CONFIG_DIR
from rootseg.evaluation.compare import load_run, write_comparison

RULES = {"runs": typed.Texts(), "names": typed.Texts(optional=True), "figures": typed.Number(whole=True, low=0)}


def check_output(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise ValueError(
            f"output={output} is a file; report writes a folder of tables and figures: give a new or existing "
            "folder (e.g. output=comparison)"
        )


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="report")
def main(cfg: DictConfig) -> None:
    with errors.user_errors():
        typed.check(cfg, RULES)
        if cfg.names is not None and len(cfg.names) != len(cfg.runs):
            raise ValueError(f"{len(cfg.names)} names for {len(cfg.runs)} runs: give one name per run, or none")
        output = Path(str(cfg.output)).expanduser()
        check_output(output)
        runs = [load_run(run, name) for run, name in zip(cfg.runs, cfg.names or [None] * len(cfg.runs), strict=True)]
        written = write_comparison(runs, output, figures=cfg.figures)
    print((output / "comparison.md").read_text())
    print("written: " + ", ".join(str(path) for path in written.values()))


def entry() -> None:
    """The `rootseg-report` console script and `python -m rootseg.report`, with Hydra's error hints."""
    errors.run(main, "report")


if __name__ == "__main__":
    entry()
