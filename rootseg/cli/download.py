"""`python -m rootseg.download dataset=NAME output=DIR [url=URL] [sha256=HEX | verify=false]`: fetch a public
root data set.

Recipes:
  segroot  SegRoot soybean CI-600 images (Wang et al. 2019) from the GitHub archive of wtwtwt0330/SegRoot at
           commit 8b83132, laid out as DIR/images/<name>.jpg + DIR/masks/<name>-mask.jpg with DIR/split.json
           reproducing SegRoot's own 39/13/13 split; read with `data=segroot data.root=DIR`.
  prmi     PRMI (Xu et al. 2022) `PRMI_official.zip` from Dryad (~9.7 GB), extracted to DIR/PRMI_official;
           read with `data=prmi data.root=DIR`.
  chicory  RootPainter's chicory data set (Smith et al.) from Zenodo record 3754046, extracted to DIR.

The archive streams to a temporary file beside its final name, is hashed on the way, and is renamed into
place only when complete and (unless verify=false) its SHA-256 matches; a mismatch removes it and names both
digests. Extraction refuses members that would land outside DIR (absolute paths, `..`, links). A finished
download leaves DIR/.rootseg-download.json, so running the command again does nothing; an interrupted one
reuses a verified archive instead of fetching it again.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from rootseg.cli import errors
from rootseg.config import typed
from rootseg.config.run_config import CONFIG_DIR
from rootseg.sources.download import RECIPES, DownloadError, fetch

log = logging.getLogger(__name__)

RULES = {"dataset": typed.Choice(tuple(sorted(RECIPES))), "verify": typed.Bool(), "keep_archive": typed.Bool()}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="download")
def main(cfg: DictConfig) -> None:
    with errors.user_errors():
        typed.check(cfg, RULES)
        if cfg.sha256 is not None and not cfg.verify:
            raise ValueError("sha256= and verify=false contradict each other: give one of them")
        url, sha256 = (None if cfg[key] is None else str(cfg[key]) for key in ("url", "sha256"))
        try:
            fetch(cfg.dataset, str(cfg.output), url, sha256, verify=cfg.verify, keep_archive=cfg.keep_archive)
        except DownloadError as error:
            log.error("error: %s", error)
            sys.exit(1)


def entry() -> None:
    """The `rootseg-download` console script and `python -m rootseg.download`, with Hydra's error hints."""
    errors.run(main, "download")


if __name__ == "__main__":
    entry()
