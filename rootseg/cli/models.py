"""`python -m rootseg.models [card=NAME]`: the models that ship with rootseg (usable as `ckpt_path=NAME` and
`model.init_ckpt=NAME` by every command), each checked against its sha256; `card=NAME` prints its model card."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from rootseg.cli import errors
from rootseg.config.run_config import CONFIG_DIR
from rootseg.models import shipped


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="models")
def main(cfg: DictConfig) -> None:
    with errors.user_errors():
        if cfg.card:
            path = shipped.shipped_file(str(cfg.card))  # refuses an unknown name or a damaged file
            card = shipped.SHIPPED_DIR / shipped.shipped_models()[str(cfg.card)]["card"]
            print(card.read_text(encoding="utf-8") if card.is_file() else f"{path}: no model card")
            return
        for name in shipped.shipped_models():
            shipped.shipped_file(name)  # the checksum: a damaged file is reported here, not at first use
        print(shipped.listing())


def entry() -> None:
    """`python -m rootseg.models`, with Hydra's error hints."""
    errors.run(main, "models")


if __name__ == "__main__":
    entry()
