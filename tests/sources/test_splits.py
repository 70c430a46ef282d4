"""Split checks (rootseg.sources.splits): one implementation for every source, run by check, train (without
check_data) and eval before any pixel is read. A split file that leaks images between any two splits, uses
unknown keys, wrong types or is a JSON list is refused with its name; one with a byte order mark is read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, compose_run
from PIL import Image

from rootseg.sources.base import DataLayoutError
from rootseg.sources.check import check_source
from rootseg.sources.folder import FolderSource
from rootseg.sources.splits import check_disjoint

STEMS = ["a", "b", "c", "d"]


def _folder(root: Path, split: object | None = None, text: str | None = None) -> Path:
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    for i, stem in enumerate(STEMS):
        mask = np.zeros((24, 32), np.uint8)
        mask[:, 3 + 5 * i : 6 + 5 * i] = 255
        Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(root / "images" / f"{stem}.png")
        Image.fromarray(mask).save(root / "masks" / f"{stem}.png")
    if text is not None:
        (root / "split.json").write_text(text, encoding="utf-8")
    elif split is not None:
        (root / "split.json").write_text(json.dumps(split))
    return root


BAD_SPLITS = {
    "test repeats train": (
        {"train": ["a", "b"], "val": ["c"], "test": ["a", "d"]},
        "1 image(s) in both train and test: ['a']",
    ),
    "val repeats train": ({"train": ["a", "b"], "val": ["b"], "test": ["c"]}, "in both train and val: ['b']"),
    "test repeats val": ({"train": ["a"], "val": ["b", "c"], "test": ["c"]}, "in both val and test: ['c']"),
    "twice in train": ({"train": ["a", "a"], "val": ["b"]}, "1 image(s) listed twice in train: ['a']"),
    "unknown keys": (
        {"training": ["a"], "validation": ["b"]},
        "'training' (did you mean 'train'?), 'validation' (did you mean 'val'?) are not split names",
    ),
    "a typo": ({"train": ["a"], "vla": ["b"]}, "'vla' (did you mean 'val'?) is not a split name"),
    "a list": (["a", "b", "c"], "a split file is a JSON object"),
    "a string": ({"train": "a", "val": ["b"]}, "'train' must be a list of image stems, got a JSON string"),
    "numbers": ({"train": [1, 2], "val": ["b"]}, "'train' holds 2 entries that are not strings ([1, 2])"),
    "null": ({"train": ["a"], "val": None}, "'val' must be a list of image stems, got a JSON null"),
    "nothing": ({}, "names no split"),
    "a missing image": ({"train": ["a", "ghost"], "val": ["b"]}, "names 1 image(s) not in"),
    "extensions": ({"train": ["a.png"], "val": ["b"]}, "split files list stems, file names without the extension"),
}


@pytest.mark.parametrize("case", list(BAD_SPLITS))
def test_a_bad_split_file_is_refused_by_name_and_check_reports_it(tmp_path, case):
    split, text = BAD_SPLITS[case]
    root = _folder(tmp_path / "data", split)
    source = FolderSource(root)
    with pytest.raises(DataLayoutError) as error:
        source.check_splits()
    assert str(error.value).startswith(f"{root / 'split.json'}: ") and text in str(error.value)
    with pytest.raises(DataLayoutError, match="split.json"):
        FolderSource(root).splits()
    report = check_source(FolderSource(root))
    assert [p.path for p in report.errors] == [str(root / "split.json")] and text in report.errors[0].message
    assert report.split_stats["all"]["readable"] == len(STEMS)  # the images are still checked


def test_a_split_file_error_is_reported_beside_unmatched_files(tmp_path):
    root = _folder(tmp_path / "data", {"train": ["a"], "val": ["a"]})
    (root / "masks" / "d.png").unlink()
    errors = check_source(FolderSource(root)).errors
    assert {Path(p.path).name for p in errors} == {"d.png", "split.json"}


def test_a_byte_order_mark_is_fine_and_test_defaults_to_val(tmp_path):
    root = _folder(tmp_path / "data", text='\ufeff{"train": ["a", "b"], "val": ["c"]}')
    splits = FolderSource(root).splits()
    assert [s.name for s in splits["test"]] == ["c"] == [s.name for s in splits["val"]]  # declared, not a leak
    assert not check_source(FolderSource(root)).errors


def test_smith_rule_splits_pass_the_same_check(tmp_path):
    root = _folder(tmp_path / "data")
    for test_fraction in (0.0, 0.25):
        splits = FolderSource(root, val_fraction=0.25, test_fraction=test_fraction).splits()
        names = {k: {s.name for s in v} for k, v in splits.items()}
        assert names["train"].isdisjoint(names["val"] | names["test"])


def test_check_disjoint_allows_only_a_declared_alias():
    check_disjoint({"train": ["a"], "val": ["b"], "test": ["b"]}, "x", same=("test",))
    with pytest.raises(DataLayoutError, match="x: 1 image\\(s\\) in both val and test"):
        check_disjoint({"train": ["a"], "val": ["b"], "test": ["b"]}, "x")


def test_rootpainter_and_prmi_sources_run_the_split_check(tmp_path):
    import importlib.util

    from rootseg.sources.prmi import PRMISource
    from rootseg.sources.rootpainter import RootPainterSource

    spec = importlib.util.spec_from_file_location("formats_fixtures", REPO / "tests" / "io" / "test_formats.py")
    formats = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(formats)  # its project and PRMI builders
    painter = RootPainterSource(formats.make_rootpainter_project(tmp_path / "rp"))
    painter.check_splits()
    assert painter.splits()["test"] == painter.splits()["val"]  # declared (no test folder): not a leak
    prmi = PRMISource(formats.make_prmi(tmp_path / "prmi"))
    prmi.check_splits()
    assert sum(map(len, prmi.splits().values())) == len(prmi.samples())


def test_train_refuses_a_leaking_split_file_without_check_data(tmp_path, monkeypatch):
    """No `check_data=true`: the split check runs anyway, before callbacks, loggers, trainer or checkpoint."""
    import rootseg.tasks.fit as fit

    def too_late(*args, **kwargs):
        raise AssertionError("train() went past the split check to its callbacks and loggers")

    monkeypatch.setattr(fit, "instantiate_group", too_late)
    root = _folder(tmp_path / "data", BAD_SPLITS["test repeats train"][0])
    overrides = ["+experiment=unet_demo", "debug=fdr", "data=folder", f"data.root={root}", "logger=csv"]
    run_dir = tmp_path / "run"
    with pytest.raises(DataLayoutError, match="in both train and test"):
        fit.train(compose_run("train", overrides, run_dir))
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "csv").exists()
