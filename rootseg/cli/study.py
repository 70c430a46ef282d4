"""`python -m rootseg.study RESULTS_CSV [output=DIR]`: a minirhizotron study from a per-image table (predict's
results.csv, rootseg.measure's traits.csv, eval's per_image.csv with side=pred|true): tables per tube x depth x
date, depth profiles (CSV and plot), changes between dates, unmatched names (`rootseg.study.tables`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rootseg.cli import errors
from rootseg.cli.settings import Option, describe, optional, parse_settings
from rootseg.study.names import DEFAULT_ANGLE_DEG, DEFAULT_SPACING_CM, NAMINGS
from rootseg.study.tables import run_study

OPTIONS = {
    "output": Option(optional(Path), None, "folder for the tables and the plot (default: study/ beside the CSV)"),
    "naming": Option(str, "ci600", f"file name convention: {', '.join(NAMINGS)}"),
    "pattern": Option(optional(str), None, "regular expression with (?P<tube>), (?P<date>), (?P<location>) or depth"),
    "date_format": Option(optional(str), None, "strptime format of the date group (CI-600 %d.%m.%y)"),
    "spacing_cm": Option(float, DEFAULT_SPACING_CM, "length along the tube of one location step (cm)"),
    "angle_deg": Option(float, DEFAULT_ANGLE_DEG, "angle between tube and soil surface (deg)"),
    "depth_offset_cm": Option(float, 0.0, "depth added to every location (cm)"),
    "value": Option(str, "rld_cm_per_cm3", "column profiled by depth"),
    "length": Option(str, "length_mm", "column compared between dates"),
    "period": Option(str, "date", "group dates by date, week or month (imaging sessions over several days)"),
    "side": Option(optional(str), None, "eval's per_image.csv: pred or true traits"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rootseg.study",
        description="Root length density by tube, depth and date, and its change between dates, from file names.",
        epilog=describe(OPTIONS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("table", type=Path, help="per-image CSV with a name column and trait columns")
    parser.add_argument("settings", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    with errors.user_errors():
        cfg = parse_settings(args.settings, OPTIONS, "study")
        output = cfg.pop("output") or args.table.parent / "study"
        tables, paths = run_study(args.table, output, **cfg)
    unmatched = f"; {len(tables.unmatched)} names did not match (unmatched.txt)" if tables.unmatched else ""
    tubes, dates = tables.images["tube"].nunique(), tables.images["date"].nunique()
    print(f"{len(tables.images)} images, {tubes} tubes, {dates} dates{unmatched}: {Path(output)}")
    return 0


def entry() -> None:
    """The `rootseg-study` console script and `python -m rootseg.study`."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
