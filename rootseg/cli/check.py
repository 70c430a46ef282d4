"""`python -m rootseg.check data=folder data.root=DIR`: is this data set usable, and if not, which files?

In the spirit of nnU-Net's integrity check: every image has a mask and vice versa, sizes match, images
and masks decode, masks are binary (the values found are reported otherwise), split files name existing
images. Prints a summary per split and every problem with its file; exits 1 when there are errors.
Training runs the same check first when `check_data=true`.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from rootseg.cli import errors
from rootseg.config.run_config import CONFIG_DIR
from rootseg.io.headers import set_pixel_budget
from rootseg.sources.check import check_source


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="check")
def main(cfg: DictConfig) -> None:
    with errors.user_errors():
        set_pixel_budget(cfg.get("max_image_pixels"))
        source = hydra.utils.instantiate(cfg.data.source)
        report = check_source(source)
    print(report.text())
    if report.errors:
        sys.exit(errors.EXIT_USER_ERROR)  # the report above says what is wrong; no traceback, no hint


def entry() -> None:
    """The `rootseg-check` console script and `python -m rootseg.check`."""
    errors.run(main, "check")


if __name__ == "__main__":
    entry()
