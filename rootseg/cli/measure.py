"""`python -m rootseg.measure input=MASKS [output=traits.csv] [dpi=600]`: root traits of every binary mask in a
folder (or a glob, or one file), one CSV row each (`rootseg.measure.folder`); exits 1 when a file could not be
measured, 2 on a wrong setting."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from rootseg.cli import errors
from rootseg.config import typed
from rootseg.config.run_config import CONFIG_DIR
from rootseg.inference.jobs import find_images
from rootseg.io.masks import grey_level
from rootseg.measure.folder import failures_path, measure_masks
from rootseg.measure.settings import resolve_mm_per_pixel, resolve_traits

#: a probability, as in eval and predict: a grey mask pixel is root where grey / 255 >= threshold
RULES = {"threshold": typed.Number(low=0, high=1, low_open=True, high_open=True, unit="probability")}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="measure")
def main(cfg: DictConfig) -> None:
    with errors.user_errors():
        typed.check(cfg, RULES)
        mm_per_pixel, traits = resolve_mm_per_pixel(cfg), resolve_traits(cfg)
        output = Path(str(cfg.output)).expanduser()
        images = find_images(str(cfg.input))
        summary = measure_masks(images, output, mm_per_pixel, traits, grey_level(cfg.threshold))
    for failure in summary["failures"]:
        print(f"FAILED {failure['error']}")
    failed = f"; {summary['failed']} failed (listed in {failures_path(output)})" if summary["failed"] else ""
    print(f"measured {summary['measured']} masks in {summary['seconds']:.1f} s{failed}: {output}")
    if summary["failed"]:
        sys.exit(1)


def entry() -> None:
    """The `rootseg-measure` console script and `python -m rootseg.measure`, with Hydra's error hints."""
    errors.run(main, "measure")


if __name__ == "__main__":
    entry()
