"""predict never overwrites a file it did not write, never skips another image as its own, and says what a run
leaves undone or what a step will cost (issue 26)."""

from __future__ import annotations

import csv
import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import random_checkpoint
from PIL import Image

from rootseg.inference.folder import predict
from rootseg.inference.jobs import plan_jobs
from rootseg.inference.notices import CPU_TILES_PER_S, MAX_TILES, heavy_step_message, warn_heavy_step
from rootseg.inference.predictor import Predictor
from rootseg.inference.settings import InferenceSettings
from rootseg.synthetic.generator import generate_sample
from rootseg.tasks.checkpoints import load_module


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return random_checkpoint(["+experiment=unet_demo"], tmp_path_factory.mktemp("ckpt") / "last.ckpt")


def _scan(path: Path, seed: int, size: tuple[int, int] = (48, 56)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(generate_sample(seed, size).image).save(path)
    return path


@pytest.fixture
def run(compose, ckpt):
    def _run(input_dir: Path, output: Path, *overrides: str) -> dict:
        args = [f"ckpt_path={ckpt}", f"input={input_dir}", f"output={output}", "save_overlay=false", *overrides]
        return predict(compose("predict", args))

    return _run


def _rows(output: Path) -> list[dict[str, str]]:
    with open(output / "results.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_inputs_named_like_anothers_outputs_are_refused_before_any_output(run, tmp_path):
    """a_rootpainter.png and a_rve.png beside a.png: their masks would land on a's outputs."""
    folder = tmp_path / "in"
    for seed, name in enumerate(("a.png", "a_rootpainter.png", "a_rve.png")):
        _scan(folder / name, seed)
    with pytest.raises(ValueError, match=r"a_rootpainter\.png would be both the mask of .*a_rootpainter\.png and"):
        run(folder, tmp_path / "out", "rve=true")
    assert not list((tmp_path / "out").glob("*.png"))
    for other in ("_overlay", "_prob"):  # every output name is reserved, whatever this run writes
        with pytest.raises(ValueError, match=f"the {other} output of"):
            plan_jobs([folder / "b.png", folder / f"b{other}.png"], tmp_path / "out")
    assert [job.stem for job in plan_jobs([folder / "a_rve.png", folder / "b.png"], tmp_path / "out")] == [
        "a_rve",
        "b",
    ]


def test_an_image_named_like_an_earlier_runs_output_is_refused(run, tmp_path):
    """Run 1 segments a_rve.png alone; run 2 brings a.png, whose RhizoVision mask would be a_rve.png."""
    first, second, output = tmp_path / "one", tmp_path / "two", tmp_path / "out"
    _scan(first / "a_rve.png", 1)
    _scan(second / "a.png", 2)
    run(first, output)
    mask = _pixels(output / "a_rve.png")
    with pytest.raises(ValueError, match=r"a_rve\.png would be both the mask of .*one/a_rve\.png and the _rve output"):
        run(second, output, "rve=true")
    np.testing.assert_array_equal(_pixels(output / "a_rve.png"), mask)
    assert not (output / "a.png").exists()


def test_a_same_named_other_image_is_refused_not_skipped(run, tmp_path):
    """tubeA then tubeB into one folder, both holding img001.png (issue 26): tubeB's is not 'done earlier'."""
    tube_a, tube_b, output = (
        _scan(tmp_path / "tubeA" / "img001.png", 1),
        _scan(tmp_path / "tubeB" / "img001.png", 2),
        tmp_path / "out",
    )
    run(tube_a.parent, output)
    mask_a, rows_a = _pixels(output / "img001.png"), _rows(output)
    with pytest.raises(
        ValueError, match=r"tubeB/img001\.png \(done earlier from .*tubeA/img001\.png\).*overwrite=true"
    ):
        run(tube_b.parent, output)
    np.testing.assert_array_equal(_pixels(output / "img001.png"), mask_a)
    assert _rows(output) == rows_a and rows_a[0]["path"] == str(tube_a)

    summary = run(tube_b.parent, output, "overwrite=true")  # asked for: tubeB's replaces tubeA's
    assert summary["segmented"] == 1 and [row["path"] for row in _rows(output)] == [str(tube_b)]
    assert run(tube_b.parent, output)["skipped"] == 1  # and is now the folder's own


def test_the_same_image_moved_or_touched_is_recognised_and_an_edited_one_is_not(run, tmp_path):
    scan, output = _scan(tmp_path / "scans" / "img001.png", 3), tmp_path / "out"
    run(scan.parent, output)
    os.utime(scan, ns=(1, 1))  # same path and content, another time: still done
    assert run(scan.parent, output)["skipped"] == 1
    moved = tmp_path / "moved"
    shutil.move(scan.parent, moved)  # the same content under another path: done
    assert run(moved, output)["skipped"] == 1
    _scan(moved / "img001.png", 4)  # edited in place: other content at the same path
    with pytest.raises(ValueError, match="same name.*other content"):
        run(moved, output)


def test_a_folder_predict_never_wrote_keeps_its_files(run, tmp_path):
    scans = tmp_path / "scans"
    _scan(scans / "a.png", 5)
    output = tmp_path / "thesis"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    (output / "results.csv").write_text("my own table\n")
    with pytest.raises(ValueError, match=r"holds 1 file\(s\) no predict run wrote.*results\.csv"):
        run(scans, output)
    assert (output / "results.csv").read_text() == "my own table\n" and not (output / ".rootseg").exists()
    (output / "results.csv").unlink()
    assert run(scans, output)["segmented"] == 1 and (output / "notes.txt").read_text() == "mine"


def test_a_shard_says_how_many_images_other_shards_still_owe(run, tmp_path, capsys):
    scans, output = tmp_path / "scans", tmp_path / "out"
    names = [f"s{i}.png" for i in range(5)]
    for i, name in enumerate(names):
        _scan(scans / name, i)
    summary = run(scans, output, "shard=1/2")  # s1 and s3; shard 0/2 owes s0, s2, s4
    assert summary["segmented"] == 2 and summary["owed"] == 3
    out = capsys.readouterr().out
    assert "holds 2 of the 5 input images: other shards still owe 3 (shard=0/2: 3; e.g. s0.png)" in out
    summary = run(scans, output, "shard=0/2")
    assert summary["owed"] == 0 and "still owe" not in capsys.readouterr().out
    assert [row["name"] for row in _rows(output)] == names


def test_a_step_of_too_many_tiles_warns_with_the_count_and_time(ckpt, tmp_path):
    """step=1 on a 512 px scan: 105,625 passes of unet_demo's 188 px output tiles (issue 26)."""
    module = load_module(ckpt)
    tile_out = int(module.tile_out)
    image = _scan(tmp_path / "big.png", 0, (512, 512))
    tiles = (512 - tile_out + 1) ** 2  # one tile per output position with step 1
    default = (math.ceil((512 - tile_out) / (tile_out // 2)) + 1) ** 2
    assert tiles > MAX_TILES
    predictor = Predictor(module, InferenceSettings(step=1, device="cpu"))
    message = warn_heavy_step(predictor, [tmp_path / "missing.png", image])
    assert (
        f"step=1 makes {tiles:,} model passes per 512 x 512 image, {tiles / default:,.0f}x the {default:,}" in message
    )
    assert f"at least {tiles / CPU_TILES_PER_S / 3600:.1f} h per image" in message
    assert warn_heavy_step(Predictor(module, InferenceSettings(device="cpu")), [image]) is None
    tta = Predictor(module, InferenceSettings(step=tile_out // 4, tta=True, device="cpu"))  # 4 flips: 4x the passes
    assert (
        predictor.tiles(512, 512) == tiles
        and tta.tiles(512, 512) == 4 * (math.ceil((512 - tile_out) / (tile_out // 4)) + 1) ** 2
    )
    assert heavy_step_message(predictor, 100, 100) is None  # a small image: one tile


def test_predict_warns_before_the_first_image(run, tmp_path, caplog, monkeypatch):
    _scan(tmp_path / "scans" / "big.png", 0, (512, 512))

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("rootseg.inference.folder.segment_image", stop)
    with caplog.at_level(logging.WARNING), pytest.raises(KeyboardInterrupt):
        run(tmp_path / "scans", tmp_path / "out", "step=1")
    assert "step=1 makes 105,625 model passes per 512 x 512 image" in caplog.text
