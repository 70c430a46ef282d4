"""`python -m rootseg.synthesize OUT [--n 40] [--size H W] [--seed 0]`: write a synthetic minirhizotron set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rootseg.cli import errors
from rootseg.synthetic.dataset import write_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rootseg.synthesize",
        description="Write a synthetic minirhizotron set: images/, masks/, lengths.csv, truth.json, split, manifest.",
    )
    parser.add_argument("out", type=Path, help="output folder (replaced atomically if it exists)")
    parser.add_argument("--n", type=int, default=40, help="number of images")
    parser.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    args = parser.parse_args(argv)
    try:
        out = write_dataset(args.out, args.n, tuple(args.size), args.seed, args.val_fraction, args.test_fraction)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {args.n} synthetic images ({args.size[0]}x{args.size[1]}) to {out}")
    return 0


def entry() -> None:
    """The `rootseg-synthesize` console script and `python -m rootseg.synthesize`."""
    with errors.user_errors():
        code = main()
    sys.exit(code)


if __name__ == "__main__":
    entry()
