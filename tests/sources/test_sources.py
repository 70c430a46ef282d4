import json

import numpy as np
import pytest
from PIL import Image

from rootseg.io.masks import read_pair
from rootseg.sources.base import DataLayoutError
from rootseg.sources.folder import FolderSource


def _make_folder(root, counts, suffix="", split=None):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, count in enumerate(counts):
        mask = np.zeros((20, 20), np.uint8)
        mask.flat[:count] = 255
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(root / "images" / f"im{i:02d}.jpg")
        Image.fromarray(mask).save(root / "masks" / f"im{i:02d}{suffix}.png")
    if split:
        (root / "split.json").write_text(json.dumps(split))
    return root


def test_smith_rule_takes_evenly_spaced_images_by_root_count(tmp_path):
    counts = [50, 10, 30, 0, 90, 70, 20, 60, 40, 80]
    source = FolderSource(_make_folder(tmp_path, counts), val_fraction=0.2, test_fraction=0.2)
    splits = source.splits()
    by_count = sorted(range(10), key=lambda i: counts[i])
    assert [s.name for s in splits["test"]] == [f"im{by_count[0]:02d}", f"im{by_count[9]:02d}"]
    names = [s.name for split in splits.values() for s in split]
    assert sorted(names) == sorted(f"im{i:02d}" for i in range(10)) and len(names) == len(set(names))
    assert len(splits["val"]) == 2 and len(splits["train"]) == 6


def test_split_file_and_mask_suffix(tmp_path):
    split = {"train": ["im00", "im01"], "val": ["im02"]}
    source = FolderSource(_make_folder(tmp_path, [5, 5, 5], "-mask", split), mask_suffix="-mask")
    splits = source.splits()
    assert [s.name for s in splits["test"]] == ["im02"]  # no test list: val is the test set
    image, mask = read_pair(splits["train"][0].image_path, splits["train"][0].mask_path)
    assert mask.sum() == 5


def test_layout_errors_name_the_files(tmp_path):
    root = _make_folder(tmp_path, [1, 1])
    (root / "masks" / "im01.png").unlink()
    (root / "masks" / "orphan.png").write_bytes(b"x")
    with pytest.raises(DataLayoutError) as error:
        FolderSource(root).splits()
    assert "im01.jpg" in str(error.value) and "orphan.png" in str(error.value)
    with pytest.raises(DataLayoutError, match="does not exist"):
        FolderSource(tmp_path / "nowhere").splits()


def test_split_file_naming_missing_images(tmp_path):
    root = _make_folder(tmp_path, [1, 1], split={"train": ["im00", "ghost"], "val": ["im01"]})
    with pytest.raises(DataLayoutError, match="ghost"):
        FolderSource(root).splits()


def test_duplicate_stems_are_rejected(tmp_path):
    root = _make_folder(tmp_path, [1])
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(root / "images" / "im00.png")
    with pytest.raises(DataLayoutError, match="share the stem"):
        FolderSource(root).splits()


def test_every_source_implements_the_one_protocol(tmp_path):
    """Datamodules, eval and check take any `DataSource`; every *Source class of rootseg.sources is one, and
    the split logic of the sources whose folders say the split (PRMI, RootPainter) is the one SplitByFolder."""
    import importlib
    import inspect
    import pkgutil

    import rootseg.sources
    from rootseg.sources.base import DataSource
    from rootseg.sources.folder import FolderSource
    from rootseg.sources.prmi import PRMISource
    from rootseg.sources.rootpainter import RootPainterSource
    from rootseg.sources.splits import SplitByFolder
    from rootseg.sources.synthetic import SyntheticSource

    instances = [
        FolderSource(tmp_path),
        SyntheticSource(tmp_path),
        PRMISource(tmp_path),
        RootPainterSource(tmp_path / "roots.seg_proj"),
    ]
    assert all(isinstance(source, DataSource) for source in instances)
    found = set()
    for module in pkgutil.iter_modules(rootseg.sources.__path__):
        members = inspect.getmembers(importlib.import_module(f"rootseg.sources.{module.name}"), inspect.isclass)
        found |= {cls for name, cls in members if name.endswith("Source") and cls is not DataSource}
    assert found == {type(source) for source in instances}
    assert issubclass(PRMISource, SplitByFolder) and issubclass(RootPainterSource, SplitByFolder)
