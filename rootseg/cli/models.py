"""`python -m rootseg.models [card=NAME]`: the models that ship with rootseg (usable as `ckpt_path=NAME` and
`model.init_ckpt=NAME` by every command), each checked against its sha256; `card=NAME` prints its model card."""

from __future__ import annotations

import argparse
import sys

from rootseg.cli import errors
from rootseg.cli.settings import Option, describe, optional, parse_settings
from rootseg.models import shipped

OPTIONS = {"card": Option(optional(str), None, "print the model card of this shipped model")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rootseg.models",
        description="List the models that ship with rootseg: use one with ckpt_path=NAME (predict, eval, annotate).",
        epilog=describe(OPTIONS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("settings", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    with errors.user_errors():
        cfg = parse_settings(args.settings, OPTIONS, "models")
        if cfg["card"]:
            path = shipped.shipped_file(cfg["card"])  # refuses an unknown name or a damaged file
            card = shipped.SHIPPED_DIR / shipped.shipped_models()[cfg["card"]]["card"]
            print(card.read_text(encoding="utf-8") if card.is_file() else f"{path}: no model card")
            return 0
        for name in shipped.shipped_models():
            shipped.shipped_file(name)  # the checksum: a damaged file is reported here, not at first use
        print(shipped.listing())
    return 0


def entry() -> None:
    """`python -m rootseg.models`."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
