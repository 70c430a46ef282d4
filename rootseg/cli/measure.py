"""`python -m rootseg.measure MASKS [dpi=600] [output=traits.csv]`: root traits of every binary mask in a folder
(or a glob, or one file), one CSV row each (`rootseg.measure.folder`); exits 1 when a file could not be
measured, 2 on a wrong setting."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rootseg.cli import errors
from rootseg.cli.settings import Option, describe, floats, optional, parse_settings
from rootseg.inference.jobs import find_images
from rootseg.measure.folder import failures_path, measure_masks
from rootseg.measure.settings import resolve_mm_per_pixel, resolve_traits
from rootseg.measure.traits import DEFAULT_DEPTH_OF_FIELD_MM, DEFAULT_DIAMETER_EDGES_MM

OPTIONS = {
    "output": Option(Path, Path("traits.csv"), "the CSV to write (its failures go to <stem>_failures.csv)"),
    "dpi": Option(optional(float), None, "scan resolution; or mm_per_pixel (mm columns stay empty without)"),
    "mm_per_pixel": Option(optional(float), None, "pixel size in mm (25.4 / dpi)"),
    "diameter_classes_mm": Option(floats, list(DEFAULT_DIAMETER_EDGES_MM), "diameter class edges in mm"),
    "depth_of_field_mm": Option(float, DEFAULT_DEPTH_OF_FIELD_MM, "soil depth an image shows, for RLD per cm^3"),
    "threshold": Option(int, 127, "grey level above which a pixel of a grey or JPEG mask is root"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rootseg.measure",
        description="Root traits (RhizoVision Explorer's set) of every binary mask in a folder, glob or file.",
        epilog=describe(OPTIONS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("masks", help="a folder of masks (0/255, 0/1, RootPainter), a quoted glob, or one file")
    parser.add_argument("settings", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    with errors.user_errors():
        cfg = parse_settings(args.settings, OPTIONS, "measure")
        mm_per_pixel, traits = resolve_mm_per_pixel(cfg), resolve_traits(cfg)
        if not 0 <= cfg["threshold"] < 255:
            raise ValueError(f"threshold must be a grey level in 0-254, got {cfg['threshold']}")
        output = Path(cfg["output"]).expanduser()
        summary = measure_masks(find_images(args.masks), output, mm_per_pixel, traits, cfg["threshold"])
    for failure in summary["failures"]:
        print(f"FAILED {failure['error']}")
    failed = f"; {summary['failed']} failed (listed in {failures_path(output)})" if summary["failed"] else ""
    print(f"measured {summary['measured']} masks in {summary['seconds']:.1f} s{failed}: {output}")
    return 1 if summary["failed"] else 0


def entry() -> None:
    """The `rootseg-measure` console script and `python -m rootseg.measure`."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
