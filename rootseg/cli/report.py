"""`python -m rootseg.report RUN_DIR... [--output DIR] [--names A B ...]`: one table for several evaluations.

Each RUN_DIR is the output of `python -m rootseg.eval` (summary.json, per_image.csv). Writes comparison.md
and comparison.csv (one row per method, RootSAM Table 1 and Smith et al. Tables 3-4 columns),
f1_per_image.png, when the per-image tables hold root lengths, root_length_agreement.png, and for up to
`--figures` images that every run saved a prediction of (rootseg.eval's predictions/), errors_<image>.png:
photo | annotation | each method's error map (Smith et al. Fig. 7-9). It takes run directories rather than
configs, so it is a plain argparse command, not a Hydra app.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from rootseg.cli import errors
from rootseg.evaluation.compare import RunReadError, load_run, write_comparison


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rootseg.report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="rootseg.eval output folders")
    parser.add_argument("--output", "-o", type=Path, default=Path("comparison"), help="where to write (./comparison)")
    parser.add_argument(
        "--names", nargs="+", metavar="NAME", help="method names, one per RUN_DIR (default: experiment names)"
    )
    parser.add_argument(
        "--figures",
        type=int,
        default=4,
        metavar="N",
        help="error figures for at most N images every run saved a prediction of (default 4; 0: none)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.names is not None and len(args.names) != len(args.run_dirs):
        print(f"error: {len(args.names)} --names for {len(args.run_dirs)} run directories", file=sys.stderr)
        return 2
    if args.output.exists() and not args.output.is_dir():
        print(
            f"error: --output {args.output} is a file; report writes a folder of tables and figures: give a new or "
            "existing folder (e.g. -o comparison)",
            file=sys.stderr,
        )
        return 2
    names = args.names or [None] * len(args.run_dirs)
    try:
        runs = [load_run(run_dir, name) for run_dir, name in zip(args.run_dirs, names, strict=True)]
    except RunReadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    written = write_comparison(runs, args.output, figures=args.figures)
    print((args.output / "comparison.md").read_text())
    print("written: " + ", ".join(str(path) for path in written.values()))
    return 0


def entry() -> None:
    """The `rootseg-report` console script and `python -m rootseg.report`."""
    with errors.user_errors():
        code = main()
    sys.exit(code)


if __name__ == "__main__":
    entry()
