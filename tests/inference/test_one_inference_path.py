"""Issue 13's promises: eval scores exactly the masks predict writes, both commands take the same settings, a
4-shard predict equals a 1-process predict, and a second predict into a busy folder is refused."""

from __future__ import annotations

import csv
import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import compose_run
from PIL import Image

from rootseg.evaluation.run import evaluate
from rootseg.inference.folder import predict
from rootseg.inference.locks import shard_lock


@pytest.fixture(scope="module")
def scans(tmp_path_factory, synthetic_dir) -> Path:
    """Six synthetic scans of other sizes than the checkpoint's training images, with their masks."""
    from rootseg.synthetic.dataset import write_dataset

    folder = write_dataset(tmp_path_factory.mktemp("scans") / "set", n=6, size=(230, 170), seed=31)
    (folder / "split.json").unlink()
    return folder


def _predict(ckpt: Path, images: Path, output: Path, *overrides: str) -> dict:
    args = [f"ckpt_path={ckpt}", f"input={images}", f"output={output}", "save_overlay=false", *overrides]
    return predict(compose_run("predict", args, output.parent / f"hydra_{output.name}"))


def _results(output: Path) -> list[dict[str, str]]:
    with open(output / "results.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("setting", [[], ["threshold=0.3", "step=tile"]])
def test_eval_scores_exactly_the_masks_predict_writes(tiny_checkpoint, scans, tmp_path, setting):
    """Default settings (and the same non-default ones given to both): eval's per-image and pooled numbers
    equal counts taken with NumPy from predict's mask files and the annotations."""
    output = tmp_path / "predicted"
    _predict(tiny_checkpoint, scans / "images", output, *setting)
    cfg = compose_run(
        "eval", [f"ckpt_path={tiny_checkpoint}", "data=folder", f"data.root={scans}", "figures=0", *setting], tmp_path
    )
    result = evaluate(cfg)
    with open(tmp_path / "per_image.csv", newline="", encoding="utf-8") as handle:
        rows = {row["name"]: row for row in csv.DictReader(handle)}
    assert sorted(rows) == sorted(p.stem for p in (scans / "images").glob("*.png")) and len(rows) == 6
    totals = np.zeros(4, np.int64)
    for name, row in rows.items():
        pred = np.asarray(Image.open(output / f"{name}.png")) == 255
        truth = np.asarray(Image.open(scans / "masks" / f"{name}.png")) > 127
        counts = np.array([(pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum(), (~pred & ~truth).sum()])
        assert [int(row[k]) for k in ("tp", "fp", "fn", "tn")] == counts.tolist(), name
        totals += counts
    tp, fp, fn, _ = totals
    assert result["pooled"]["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-12)
    assert result["pooled"]["tp"] == tp and result["pooled"]["fp"] == fp
    summary = (tmp_path / "summary.md").read_text()
    window = "Smith et al.'s non-overlapping grid" if setting else "step 94 px, gaussian blending"
    assert window in summary and f"threshold {result['threshold']:g}" in summary


def test_eval_and_predict_accept_the_same_setting_names(compose):
    from rootseg.inference.settings import STAGE_SETTINGS, InferenceSettings

    names = {f for f in InferenceSettings.__dataclass_fields__ if f not in STAGE_SETTINGS} | {"dpi"}
    for command in ("eval", "predict"):
        cfg = compose(command, ["ckpt_path=x", "input=x", "output=x"] if command == "predict" else ["ckpt_path=x"])
        assert names <= set(cfg.keys()), f"{command} lacks {sorted(names - set(cfg.keys()))}"
    assert "resolution" not in compose("predict", ["ckpt_path=x", "input=x", "output=x"])  # one key pair only


def _shard(args: tuple) -> None:
    ckpt, images, output, shard = args
    _predict(Path(ckpt), Path(images), Path(output), f"shard={shard}/4")


def test_four_shards_equal_one_process(tiny_checkpoint, scans, tmp_path):
    whole = tmp_path / "whole"
    _predict(tiny_checkpoint, scans / "images", whole)
    sharded = tmp_path / "sharded"
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:  # two at a time on 2 cores; the four write into one folder
        pool.map(_shard, [(str(tiny_checkpoint), str(scans / "images"), str(sharded), k) for k in range(4)])
    names = sorted(p.name for p in whole.iterdir() if p.is_file() and p.name != "predict_config.yaml")
    assert names == sorted(p.name for p in sharded.iterdir() if p.is_file() and p.name != "predict_config.yaml")
    for name in names:
        if name.endswith(".png"):
            assert np.array_equal(np.asarray(Image.open(whole / name)), np.asarray(Image.open(sharded / name))), name
    drop = ("seconds",)
    rows = [{k: v for k, v in row.items() if k not in drop} for row in _results(whole)]
    assert rows == [{k: v for k, v in row.items() if k not in drop} for row in _results(sharded)]
    assert len(rows) == 6


def test_one_shard_segments_its_share_and_results_hold_every_finished_image(tiny_checkpoint, scans, tmp_path):
    output = tmp_path / "out"
    summary = _predict(tiny_checkpoint, scans / "images", output, "shard=1/4")
    images = sorted((scans / "images").glob("*.png"))
    assert summary["segmented"] == 2  # images 1 and 5 of 6
    assert [row["name"] for row in _results(output)] == [images[1].name, images[5].name]
    summary = _predict(tiny_checkpoint, scans / "images", output)  # the rest, by one process, later
    assert (summary["segmented"], summary["skipped"]) == (4, 2)
    assert [row["name"] for row in _results(output)] == [p.name for p in images]


def test_a_second_predict_into_a_busy_folder_is_refused(tiny_checkpoint, scans, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    with shard_lock(output, 0, 1):  # another run holds the folder
        with pytest.raises(ValueError, match="already predicting into this folder.*wait for it"):
            _predict(tiny_checkpoint, scans / "images", output)
        with pytest.raises(ValueError, match="shard 0/1.*same N"):
            _predict(tiny_checkpoint, scans / "images", output, "shard=0/2")
    with shard_lock(output, 0, 2):  # another shard of a 2-way split runs: shard 1/2 may join it
        summary = _predict(tiny_checkpoint, scans / "images", output, "shard=1/2")
        assert summary["segmented"] == 3
    assert not list(output.glob(".*.tmp*"))


def test_results_are_rebuilt_from_records_so_no_row_is_lost(tiny_checkpoint, scans, tmp_path):
    """Whatever results.csv held (a run that rewrote it from an old snapshot), the next rebuild holds a row
    for every image whose mask and record exist."""
    output = tmp_path / "out"
    _predict(tiny_checkpoint, scans / "images", output)
    full = _results(output)
    (output / "results.csv").write_text("name,path\n")  # a lost update
    shutil.rmtree(output / ".rootseg" / "records")  # and records of an older rootseg, which had none
    summary = _predict(tiny_checkpoint, scans / "images", output)
    assert (summary["segmented"], summary["skipped"]) == (0, 6)
    rebuilt = _results(output)
    keep = ("name", "height", "width", "root_pixels", "root_length_px")
    assert [{k: r[k] for k in keep} for r in rebuilt] == [{k: r[k] for k in keep} for r in full]
