"""`python -m rootseg.study input=RESULTS_CSV [output=DIR]`: a minirhizotron study from a per-image table (predict's
results.csv, rootseg.measure's traits.csv, eval's per_image.csv with side=pred|true): tables per tube x depth x
date, depth profiles (CSV and plot), changes between dates, unmatched names (`rootseg.study.tables`)."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from rootseg.cli import errors
from rootseg.config import typed
from rootseg.config.run_config import CONFIG_DIR
from rootseg.study.names import NAMINGS
from rootseg.study.tables import PERIODS, SIDES, run_study

RULES = {
    "naming": typed.Choice(tuple(NAMINGS)),
    "spacing_cm": typed.Number(low=0, low_open=True, unit="cm"),
    "angle_deg": typed.Number(low=0, high=90, low_open=True, unit="degrees from the soil surface"),
    "depth_offset_cm": typed.Number(unit="cm"),
    "period": typed.Choice(tuple(PERIODS)),
    "side": typed.Choice(SIDES, optional=True),
}
TEXT_KEYS = ("pattern", "date_format", "value", "length")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="study")
def main(cfg: DictConfig) -> None:
    with errors.user_errors():
        typed.check(cfg, RULES)
        table = Path(str(cfg.input)).expanduser()
        output = Path(str(cfg.output)).expanduser() if cfg.output is not None else table.parent / "study"
        options = {key: cfg[key] if cfg[key] is None else str(cfg[key]) for key in TEXT_KEYS}
        keys = ("spacing_cm", "angle_deg", "depth_offset_cm", "period", "side")
        tables, _ = run_study(table, output, cfg.naming, **options, **{key: cfg[key] for key in keys})
    unmatched = f"; {len(tables.unmatched)} names did not match (unmatched.txt)" if tables.unmatched else ""
    tubes, dates = tables.images["tube"].nunique(), tables.images["date"].nunique()
    print(f"{len(tables.images)} images, {tubes} tubes, {dates} dates{unmatched}: {output}")


def entry() -> None:
    """The `rootseg-study` console script and `python -m rootseg.study`, with Hydra's error hints."""
    errors.run(main, "study")


if __name__ == "__main__":
    entry()
