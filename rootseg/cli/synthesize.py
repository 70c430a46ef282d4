"""`python -m rootseg.synthesize output=DIR [n=40] [size=[512,512]] [seed=0]`: write a synthetic minirhizotron
set (`rootseg.synthetic.dataset.write_dataset`)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from rootseg.cli import errors
from rootseg.config import typed
from rootseg.config.run_config import CONFIG_DIR
from rootseg.io.headers import memory_bytes
from rootseg.synthetic.dataset import write_dataset

RULES = {
    "n": typed.Number(whole=True, low=1),
    "size": typed.Numbers(typed.Number(whole=True, low=1), length=2),
    "seed": typed.Number(whole=True, low=0),
    "val_fraction": typed.Number(low=0, high=1),
    "test_fraction": typed.Number(low=0, high=1),
    "max_image_pixels": typed.Number(whole=True, low=1, optional=True),
}
#: peak memory per image pixel while the generator draws one image (94 B measured at 3000 x 3000, RSS)
GENERATOR_BYTES_PER_PIXEL = 100


def check_size(height: int, width: int, max_pixels: int | None) -> None:
    """Refuse an image the generator cannot draw in this machine's memory, before any work (not a MemoryError
    minutes later)."""
    budget = max_pixels or memory_bytes() // GENERATOR_BYTES_PER_PIXEL
    if height * width > budget:
        source = "max_image_pixels" if max_pixels else f"{memory_bytes() / 2**30:.0f} GiB of memory / 100 B per pixel"
        raise ValueError(
            f"size=[{height},{width}] is {height * width / 1e6:,.1f} MP per image, over the budget of "
            f"{budget / 1e6:,.1f} MP ({source}); choose a smaller size (CI-600 scans are 2550 x 2160), or raise "
            "max_image_pixels=N if the machine has the memory"
        )


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="synthesize")
def main(cfg: DictConfig) -> None:
    with errors.user_errors():
        typed.check(cfg, RULES)
        height, width = cfg.size
        check_size(height, width, cfg.max_image_pixels)
        out = write_dataset(str(cfg.output), cfg.n, (height, width), cfg.seed, cfg.val_fraction, cfg.test_fraction)
    print(f"wrote {cfg.n} synthetic images ({height}x{width}) to {out}")


def entry() -> None:
    """The `rootseg-synthesize` console script and `python -m rootseg.synthesize`, with Hydra's error hints."""
    errors.run(main, "synthesize")


if __name__ == "__main__":
    entry()
