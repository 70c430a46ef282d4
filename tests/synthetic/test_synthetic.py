"""The synthetic generator: determinism per seed and per image index, exact masks, and dataset bookkeeping."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, child_env
from PIL import Image
from scipy import ndimage

from rootseg.synthetic.dataset import ensure_dataset, write_dataset
from rootseg.synthetic.generator import SyntheticSample, generate_sample

SMALL = (96, 128)


def test_same_seed_same_arrays_different_seed_different():
    a, b, c = generate_sample(3, SMALL), generate_sample(3, SMALL), generate_sample(4, SMALL)
    assert isinstance(a, SyntheticSample)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert a.centreline_length == b.centreline_length
    assert not np.array_equal(a.image, c.image)


def test_shapes_dtypes_and_mask_values():
    sample = generate_sample(0, SMALL)
    assert sample.image.shape == (*SMALL, 3) and sample.image.dtype == np.uint8
    assert sample.mask.shape == SMALL and sample.mask.dtype == np.uint8
    assert set(np.unique(sample.mask)) == {0, 1}
    assert sample.centreline_length > 0


@pytest.mark.parametrize("seed", range(4))
def test_root_fraction_and_widths_are_realistic(seed):
    sample = generate_sample(seed, (256, 256))
    assert 0.003 < sample.mask.mean() < 0.2
    dist = ndimage.distance_transform_edt(sample.mask)
    # Widths 2-15 px: half-widths up to ~8, a little more where two thick roots cross.
    assert 1 <= dist.max() <= 10
    assert np.percentile(dist[sample.mask > 0], 95) <= 7.5
    # Roots are brighter than soil on average, or no model could learn them.
    grey = sample.image.mean(axis=2)
    assert grey[sample.mask > 0].mean() > grey[sample.mask == 0].mean() + 8  # real SegRoot: +12 to +38


def test_image_i_does_not_depend_on_n(tmp_path):
    small = write_dataset(tmp_path / "n3", 3, SMALL, seed=7)
    large = write_dataset(tmp_path / "n5", 5, SMALL, seed=7)
    for i in range(3):
        for sub in ("images", "masks"):
            a = np.asarray(Image.open(small / sub / f"synth_{i:04d}.png"))
            b = np.asarray(Image.open(large / sub / f"synth_{i:04d}.png"))
            assert np.array_equal(a, b), (sub, i)


def test_write_dataset_layout(tmp_path):
    out = write_dataset(tmp_path / "set", 5, SMALL, seed=1, val_fraction=0.2, test_fraction=0.2)
    stems = [f"synth_{i:04d}" for i in range(5)]
    assert sorted(p.stem for p in (out / "images").glob("*.png")) == stems
    assert sorted(p.stem for p in (out / "masks").glob("*.png")) == stems
    image = np.asarray(Image.open(out / "images" / "synth_0000.png"))
    mask = np.asarray(Image.open(out / "masks" / "synth_0000.png"))
    assert image.shape == (*SMALL, 3) and set(np.unique(mask)) <= {0, 255}
    assert np.array_equal(mask // 255, generate_sample(np.random.SeedSequence(1, spawn_key=(0,)), SMALL).mask)

    split = json.loads((out / "split.json").read_text())
    assert set(split) == {"train", "val", "test"}
    listed = split["train"] + split["val"] + split["test"]
    assert sorted(listed) == stems  # every stem exactly once, no overlap
    assert split["val"] and split["test"] and split["train"]
    assert (
        write_dataset(tmp_path / "again", 5, SMALL, seed=1).joinpath("split.json").read_text()
        == (out / "split.json").read_text()
    )

    with open(out / "lengths.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == stems
    assert all(float(r["centreline_length_px"]) > 0 and int(r["root_pixels"]) > 0 for r in rows)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n"] == 5 and manifest["size"] == list(SMALL) and manifest["seed"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_write_dataset_rejects_fractions_without_training_data(tmp_path):
    with pytest.raises(ValueError):
        write_dataset(tmp_path / "bad", 4, SMALL, val_fraction=0.6, test_fraction=0.5)
    assert not (tmp_path / "bad").exists()


def test_cli_writes_expected_count(tmp_path):
    out = tmp_path / "cli"
    env = child_env(OMP_NUM_THREADS="1")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rootseg.synthesize",
            f"output={out}",
            "n=3",
            "size=[64,80]",
            "seed=2",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout and "3" in result.stdout
    assert len(list((out / "images").glob("*.png"))) == 3
    assert np.asarray(Image.open(out / "images" / "synth_0000.png")).shape == (64, 80, 3)


def test_ensure_dataset_reuses_then_regenerates(tmp_path):
    root = tmp_path / "synthetic"
    assert ensure_dataset(root, 3, SMALL, seed=0) == root
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    assert ensure_dataset(root, 3, SMALL, seed=0) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == stamps

    first = np.asarray(Image.open(root / "images" / "synth_0000.png"))
    ensure_dataset(root, 3, SMALL, seed=1)
    assert json.loads((root / "manifest.json").read_text())["seed"] == 1
    assert not np.array_equal(first, np.asarray(Image.open(root / "images" / "synth_0000.png")))
    ensure_dataset(root, 4, SMALL, seed=1)
    assert len(list((root / "images").glob("*.png"))) == 4


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["size=[30000,30000]"], "size=[30000,30000] is 900.0 MP per image, over the budget of 171.8 MP (16 GiB"),
        (["size=[600,600]", "max_image_pixels=100000"], "size=[600,600] is 0.4 MP per image, over the budget of 0.1"),
        (["size=[0,64]"], "size[0] must be a whole number >= 1, got 0"),
        (["size=512"], "size must be a list of 2 numbers such as size=[512,512], got 512"),
        (["n=abc"], "n must be a whole number >= 1, got 'abc'"),
        (["seed=-1"], "seed must be a whole number >= 0, got -1"),
        (["val_fraction=inf"], "val_fraction must be a finite number >= 0 and <= 1, got inf"),
    ],
)
def test_cli_refuses_bad_sizes_and_numbers_before_any_work(tmp_path, capsys, monkeypatch, settings, message):
    """30000 x 30000 ran out of memory after 25 s; now every setting is checked before an image is drawn."""
    from conftest import run_command

    import rootseg.cli.synthesize as command

    monkeypatch.setattr(command, "memory_bytes", lambda: 16 * 2**30)  # the budget of a 16 GiB machine: 171 MP
    monkeypatch.setattr(command, "write_dataset", lambda *args: pytest.fail("wrote a data set"))
    assert run_command("synthesize", [f"output={tmp_path / 'set'}", *settings], tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert f"error: {message}" in err and "Traceback" not in err
    assert not (tmp_path / "set").exists()
