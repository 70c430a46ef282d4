"""`data=synthetic`: the built-in synthetic set, generated on first use and then read like any folder."""

from __future__ import annotations

from pathlib import Path

from rootseg.sources.base import Sample
from rootseg.sources.folder import FolderSource


class SyntheticSource(FolderSource):
    """The built-in synthetic minirhizotron set: generated once into `root`, then read like any folder."""

    def __init__(
        self,
        root: str | Path,
        n: int = 40,
        size: tuple[int, int] = (512, 512),
        seed: int = 0,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
    ) -> None:
        super().__init__(root, split_file="split.json")
        self.n, self.size, self.seed = n, tuple(size), seed
        self.gen_val_fraction, self.gen_test_fraction = val_fraction, test_fraction

    def _make_splits(self) -> dict[str, list[Sample]]:
        from rootseg.synthetic.dataset import ensure_dataset

        ensure_dataset(self.root, self.n, self.size, self.seed, self.gen_val_fraction, self.gen_test_fraction)
        return super()._make_splits()
