"""`python -m rootseg.compare pred=DIR truth=DIR [output=DIR]`: masks against reference masks, no model
(`rootseg.evaluation.folders`); exits 2 on a wrong setting or folders whose names do not match."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from rootseg.cli import errors
from rootseg.cli.measure import RULES
from rootseg.config import typed
from rootseg.config.run_config import CONFIG_DIR
from rootseg.evaluation.folders import compare_folders
from rootseg.io.masks import grey_level
from rootseg.measure.settings import resolve_mm_per_pixel, resolve_traits
from rootseg.measure.traits import TraitSettings


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="compare")
def main(cfg: DictConfig) -> None:
    with errors.user_errors():
        typed.check(cfg, RULES)
        settings = resolve_traits(cfg) or TraitSettings(clean=None)
        output = Path(str(cfg.output)).expanduser()
        pred, truth = Path(str(cfg.pred)).expanduser(), Path(str(cfg.truth)).expanduser()
        intervals = Path(str(cfg.intervals)).expanduser() if cfg.get("intervals") else None
        mm, level = resolve_mm_per_pixel(cfg), grey_level(cfg.threshold)
        summary = compare_folders(pred, truth, output, mm, settings, level, intervals)
    print(f"compared {summary['n_images']} masks; pooled Dice {summary['pooled']['dice']:.4f}: {output}/summary.md")


def entry() -> None:
    """The `rootseg-compare` console script: `python -m rootseg.compare` with its error hints."""
    errors.run(main, "compare")


if __name__ == "__main__":
    entry()
