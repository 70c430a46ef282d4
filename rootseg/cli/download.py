"""`python -m rootseg.download NAME DIR [--url URL] [--sha256 HEX | --no-verify]`: fetch a public root data set.

Recipes:
  segroot  SegRoot soybean CI-600 images (Wang et al. 2019) from the GitHub archive of wtwtwt0330/SegRoot at
           commit 8b83132, laid out as DIR/images/<name>.jpg + DIR/masks/<name>-mask.jpg with DIR/split.json
           reproducing SegRoot's own 39/13/13 split; read with `data=segroot data.root=DIR`.
  prmi     PRMI (Xu et al. 2022) `PRMI_official.zip` from Dryad (~9.7 GB), extracted to DIR/PRMI_official;
           read with `data=prmi data.root=DIR`.
  chicory  RootPainter's chicory data set (Smith et al.) from Zenodo record 3754046, extracted to DIR.

The archive streams to a temporary file beside its final name, is hashed on the way, and is renamed into
place only when complete and (unless --no-verify) its SHA-256 matches; a mismatch removes it and names both
digests. Extraction refuses members that would land outside DIR (absolute paths, `..`, links). A finished
download leaves DIR/.rootseg-download.json, so running the command again does nothing; an interrupted one
reuses a verified archive instead of fetching it again.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rootseg.cli import errors
from rootseg.sources.download import RECIPES, DownloadError, fetch

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rootseg.download", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("name", choices=sorted(RECIPES), help="which data set")
    parser.add_argument("dir", type=Path, help="where to put it")
    parser.add_argument("--url", help="download from here instead (a mirror, or a local copy's file:// URL)")
    checks = parser.add_mutually_exclusive_group()
    checks.add_argument("--sha256", help="the archive's expected SHA-256 (hex)")
    checks.add_argument("--no-verify", action="store_true", help="accept the archive without checking its digest")
    parser.add_argument("--keep-archive", action="store_true", help="keep DIR/.download/<archive> afterwards")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        fetch(args.name, args.dir, args.url, args.sha256, verify=not args.no_verify, keep_archive=args.keep_archive)
    except DownloadError as error:
        log.error("error: %s", error)
        return 1
    return 0


def entry() -> None:
    """The `rootseg-download` console script and `python -m rootseg.download`."""
    with errors.user_errors():
        code = main()
    sys.exit(code)


if __name__ == "__main__":
    entry()
