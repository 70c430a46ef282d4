"""rootseg.predict: every output written whole, CSV rows, resume after a kill, bad files reported by name."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import REPO, child_env
from PIL import Image

from rootseg.figures.overlay import write_overlay
from rootseg.inference.clicks import assign_clicks, read_prompt_file
from rootseg.inference.folder import predict
from rootseg.inference.jobs import find_images, plan_jobs
from rootseg.inference.predictor import KINDS, Predictor
from rootseg.inference.settings import InferenceSettings
from rootseg.io.atomic import atomic_path
from rootseg.io.images import read_image
from rootseg.io.rootpainter import decode_rootpainter_segmentation
from rootseg.synthetic.generator import generate_sample

SIZES = {"a scan é": (200, 160), "b": (96, 230), "c": (80, 100), "d": (150, 150)}  # c: smaller than a tile


@pytest.fixture
def images_dir(tmp_path) -> Path:
    folder = tmp_path / "in put é"
    folder.mkdir()
    for i, (stem, size) in enumerate(SIZES.items()):
        sample = generate_sample(i, (max(size[0], 16), max(size[1], 16)))
        Image.fromarray(sample.image).save(folder / f"{stem}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def run(compose, unet_ckpt):
    def _run(input_dir: Path, output: Path, *overrides: str) -> dict:
        args = [f"ckpt_path={unet_ckpt}", f"input='{input_dir}'", f"output='{output}'", *overrides]
        return predict(compose("predict", args))

    return _run


def _rows(output: Path) -> list[dict[str, str]]:
    with open(output / "results.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every output file (not predict's own .rootseg/ state): an atomic rewrite changes the inode
    even within one clock tick."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()}


def _leftovers(folder: Path) -> list[str]:
    """Temporary files anywhere in the output folder, its .rootseg/ records included."""
    hidden = [p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".rootseg"]
    return hidden + [p.name for p in (folder / ".rootseg").rglob(".*.tmp*")]


def test_predict_writes_every_output(run, images_dir, tmp_path):
    output = tmp_path / "out"
    summary = run(images_dir, output, "save_probs=npy", "mm_per_pixel=0.05")
    assert (summary["segmented"], summary["skipped"], summary["failed"]) == (4, 0, 0)
    rows = {row["name"]: row for row in _rows(output)}
    assert sorted(rows) == sorted(f"{stem}.png" for stem in SIZES)
    for stem, (h, w) in SIZES.items():
        mask = np.array(Image.open(output / f"{stem}.png"))
        assert mask.shape == (h, w) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        probs = np.load(output / f"{stem}_prob.npy")
        assert probs.shape == (h, w) and probs.dtype == np.float32
        np.testing.assert_array_equal(mask == 255, probs >= 0.5)
        rgba = np.array(Image.open(output / f"{stem}_rootpainter.png"))
        assert rgba.shape == (h, w, 4)
        np.testing.assert_array_equal(decode_rootpainter_segmentation(rgba), mask == 255)
        assert read_image(output / f"{stem}_overlay.jpg").shape == (h, w, 3)
        row = rows[f"{stem}.png"]
        assert (int(row["height"]), int(row["width"])) == (h, w)
        assert int(row["root_pixels"]) == int((mask == 255).sum())
        assert float(row["root_fraction"]) == pytest.approx((mask == 255).mean(), abs=1e-6)
        assert float(row["root_length_mm"]) == pytest.approx(float(row["root_length_px"]) * 0.05, abs=1e-3)
        assert Path(row["path"]) == images_dir / f"{stem}.png" and float(row["seconds"]) > 0
    assert _leftovers(output) == []


def test_rerun_skips_everything_and_overwrite_redoes(run, images_dir, tmp_path):
    output = tmp_path / "out"
    run(images_dir, output, "save_probs=png")
    before = _stamps(output)
    rows_before = _rows(output)
    summary = run(images_dir, output, "save_probs=png")
    assert (summary["segmented"], summary["skipped"]) == (0, 4)
    assert _stamps(output) == before
    assert _rows(output) == rows_before and rows_before[0]["root_length_mm"] == ""

    summary = run(images_dir, output, "save_probs=png", "overwrite=true", "dpi=254")
    assert (summary["segmented"], summary["skipped"]) == (4, 0)
    after = _stamps(output)
    for stem in SIZES:
        for name in (f"{stem}.png", f"{stem}_prob.png", f"{stem}_rootpainter.png", f"{stem}_overlay.jpg"):
            assert after[name] != before[name], name
    assert all(float(row["root_length_mm"]) >= 0 for row in _rows(output))


def test_killed_run_resumes_without_redoing_finished_images(run, images_dir, tmp_path, monkeypatch):
    output = tmp_path / "out"
    real_overlay = write_overlay
    calls = []

    def overlay_then_kill(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:  # killed while writing the third image's overlay
            with atomic_path(path) as tmp:
                tmp.write_bytes(b"half a jpeg")
                raise KeyboardInterrupt
        return real_overlay(path, *args, **kwargs)

    monkeypatch.setattr("rootseg.inference.outputs.write_overlay", overlay_then_kill)
    with pytest.raises(KeyboardInterrupt):
        run(images_dir, output)
    monkeypatch.setattr("rootseg.inference.outputs.write_overlay", real_overlay)

    stems = list(SIZES)  # "a scan é", "b", "c", "d" are processed in sorted order
    assert [row["name"] for row in _rows(output)] == [f"{s}.png" for s in stems[:2]]
    assert (output / f"{stems[2]}_rootpainter.png").exists() and not (output / f"{stems[2]}.png").exists()
    assert _leftovers(output) == []
    (output / f".{stems[3]}.x1y2z3.tmp.png").write_bytes(b"left by kill -9")
    done = {k: v for k, v in _stamps(output).items() if k.startswith(tuple(stems[:2]))}

    summary = run(images_dir, output)
    assert (summary["segmented"], summary["skipped"], summary["failed"]) == (2, 2, 0)
    assert {k: v for k, v in _stamps(output).items() if k in done} == done
    assert [row["name"] for row in _rows(output)] == [f"{s}.png" for s in stems]
    assert all((output / f"{s}.png").exists() for s in stems)
    assert _leftovers(output) == []


def test_corrupt_files_are_reported_and_the_run_fails(unet_ckpt, images_dir, tmp_path):
    (images_dir / "broken.png").write_text("this is not a PNG")
    (images_dir / "empty.jpg").write_bytes(b"")
    output = tmp_path / "out"
    env = child_env(OMP_NUM_THREADS="1", HYDRA_FULL_ERROR="1")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rootseg.predict",
            f"ckpt_path={unet_ckpt}",
            f"input='{images_dir}'",
            f"output='{output}'",
            f"hydra.run.dir='{tmp_path / 'hydra'}'",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "FAILED broken.png" in result.stdout and "FAILED empty.jpg" in result.stdout
    assert "4 segmented, 0 skipped (already done), 2 failed" in result.stdout
    assert [row["name"] for row in _rows(output)] == [f"{stem}.png" for stem in SIZES]
    with open(output / "failures.csv", newline="", encoding="utf-8") as handle:
        assert [row["name"] for row in csv.DictReader(handle)] == ["broken.png", "empty.jpg"]
    assert not (output / "broken.png").exists() and _leftovers(output) == []


def test_inputs_globs_and_stem_collisions(tmp_path):
    folder = tmp_path / "my scans"
    folder.mkdir()
    for name in ("x.jpg", "x.png", "y.TIF", ".hidden.png", "._y.jpg", "z.txt"):
        (folder / name).write_bytes(b"")
    assert [p.name for p in find_images(folder)] == ["x.jpg", "x.png", "y.TIF"]
    assert [p.name for p in find_images(str(folder / "x.*"))] == ["x.jpg", "x.png"]
    jobs = plan_jobs(find_images(folder), tmp_path / "out")
    assert [job.stem for job in jobs] == ["x_jpg", "x_png", "y"]
    with pytest.raises(ValueError, match="folder the input image"):
        plan_jobs(find_images(folder), folder)
    with pytest.raises(FileNotFoundError, match="matches no image"):
        find_images(str(folder / "*.bmp"))


def test_bad_options_fail_before_any_work(compose, tmp_path):
    base = ["ckpt_path=/nonexistent.ckpt", f"input={tmp_path}", f"output={tmp_path}/o"]
    for option, message in (
        ("threshold=1.5", "threshold"),
        ("save_probs=tiff", "save_probs"),
        ("blend=max", "blend"),
        ("dpi=600 mm_per_pixel=0.1", "disagree"),
        ("shard=4/4", "0 <= K < N"),
        ("step=0", "step"),
        ("precision=fp16", "precision"),
    ):
        with pytest.raises(ValueError, match=message):
            predict(compose("predict", [*base, *option.split()]))


class FakeRootSAM(torch.nn.Module):
    """Stands in for a RootSAM task module: the predictor only needs its kind and threshold."""

    kind = "rootsam"
    threshold = 0.5


class RecordingInference:
    """A RootSAM inference that records the clicks each image gets."""

    honours = frozenset({"prompts"})
    seen: dict = {}

    def __init__(self, module, settings, device, proposer=None):
        pass

    def __call__(self, image, clicks=None):
        RecordingInference.seen[image.shape] = None if clicks is None else clicks.tolist()
        return np.zeros(image.shape[:2], np.float32)

    def describe(self):
        return {}


def test_rootsam_gets_each_images_clicks_from_a_prompt_file(tmp_path, monkeypatch):
    """CSV and JSON click files reach RootSAM per image; images without clicks go prompt-free (None)."""
    monkeypatch.setitem(KINDS, "rootsam", RecordingInference)
    (tmp_path / "clicks.csv").write_text("image,x,y\nscan_a.jpg,10,20\nscan_a.jpg,30,5.5\n")
    (tmp_path / "clicks.json").write_text('{"scan_a": [[10, 20], [30, 5.5]]}')
    for name in ("clicks.csv", "clicks.json"):
        RecordingInference.seen = {}
        predictor = Predictor(FakeRootSAM(), InferenceSettings(prompts=str(tmp_path / name)))
        images = [tmp_path / "scan_a.jpg", tmp_path / "scan_b.jpg"]
        predictor.bind_images(images)
        predictor.probabilities(np.zeros((40, 50, 3), np.uint8), images[0])
        predictor.probabilities(np.zeros((41, 50, 3), np.uint8), images[1])
        assert RecordingInference.seen == {(40, 50, 3): [[10.0, 20.0], [30.0, 5.5]], (41, 50, 3): None}
    (tmp_path / "bad.csv").write_text("image,x\nscan_a,1\n")
    with pytest.raises(ValueError, match="bad.csv.*image,x,y"):
        read_prompt_file(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="no predictor for model kind 'other'"):
        Predictor(SimpleNamespace(kind="other"))


@pytest.mark.parametrize(
    ("text", "where", "click"),
    [
        ("image,x,y\nscan_a.png,10,20\nscan_a.png,50,3\n", "line 3", "x=50, y=3"),  # x == width: off the image
        ("image,x,y\nscan_a,10,20\nscan_a,-1,3\n", "line 3", "x=-1, y=3"),
        ("image,x,y\nscan_a.png,10,20\n\nscan_a,4,40\n", "line 4", "x=4, y=40"),  # y == height
        ('{"scan_a.png": [[1, 2], [3, 1e9]]}', "click 2 of 'scan_a.png'", "x=3, y=1e\\+09"),
    ],
)
def test_clicks_off_the_image_stop_before_any_output_naming_file_line_and_image(
    tmp_path, monkeypatch, text, where, click
):
    """Issue 26: such clicks gave silently empty masks. Checked from the header at bind_images, and from the
    image itself when the header could not be read then."""
    monkeypatch.setitem(KINDS, "rootsam", RecordingInference)
    image = tmp_path / "scan_a.png"
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(image)
    source = tmp_path / ("clicks.json" if text.startswith("{") else "clicks.csv")
    source.write_text(text)
    predictor = Predictor(FakeRootSAM(), InferenceSettings(prompts=str(source)))
    message = rf"prompts={source}, {where}: the click {click} is outside the image {image} \(50 x 40 pixels"
    with pytest.raises(ValueError, match=message):
        predictor.bind_images([image])
    ghost = tmp_path / "scan_a.jpg"  # not on disk at bind time: checked when its pixels arrive
    source.write_text(text.replace("scan_a.png", "scan_a.jpg"))
    predictor = Predictor(FakeRootSAM(), InferenceSettings(prompts=str(source)))
    predictor.bind_images([ghost])
    with pytest.raises(ValueError, match=message.replace("png", "jpg")):
        predictor.probabilities(np.zeros((40, 50, 3), np.uint8), ghost)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("image,x,y\na.png,1,2\na.png,nan,2\n", "line 3"),
        ("image,x,y\na.png,inf,2\n", "line 2"),
        ('{"a.png": [[1, 2], [NaN, 2]]}', "click 2 of 'a.png'"),
    ],
)
def test_a_click_that_is_not_a_finite_number_is_refused_with_its_line(tmp_path, text, where):
    source = tmp_path / ("clicks.json" if text.startswith("{") else "clicks.csv")
    source.write_text(text)
    with pytest.raises(
        ValueError, match=rf"prompts={source}, {where}: the click for image 'a.png' is at x=(nan|inf|NaN)"
    ):
        read_prompt_file(source)


def test_click_files_name_images_by_file_name_or_stem(tmp_path):
    folder = tmp_path / "scans"
    images = [folder / n for n in ("tube1.d10.jpg", "tube1.d20.jpg", "a.jpg", "a.png", "b.tif")]
    (tmp_path / "clicks.csv").write_text(
        "image,x,y\n"
        "tube1.d10,1,2\n"  # a stem with a dot: the image tube1.d10.jpg, not a file named 'tube1'
        "scans/tube1.d20.jpg,3,4\n"  # a file name (folders dropped)
        "a.png,5,6\n"  # only a.png, not a.jpg
        "b,7,8\n"
        "b.tif,9,10\n"  # the same image named both ways: both clicks
        "c,0,0\n"  # no such image: logged, not an error
    )
    clicks = assign_clicks(read_prompt_file(tmp_path / "clicks.csv"), images)
    got = {path.name: points.tolist() for path, points in clicks.items()}
    assert got == {
        "tube1.d10.jpg": [[1.0, 2.0]],
        "tube1.d20.jpg": [[3.0, 4.0]],
        "a.png": [[5.0, 6.0]],
        "b.tif": [[7.0, 8.0], [9.0, 10.0]],
    }

    (tmp_path / "ambiguous.json").write_text('{"a": [[1, 2]]}')
    with pytest.raises(ValueError, match=r"ambiguous\.json.*'a'.*a\.jpg.*a\.png.*a\.jpg or a\.png"):
        assign_clicks(read_prompt_file(tmp_path / "ambiguous.json"), images, tmp_path / "ambiguous.json")
    twins = [tmp_path / "t1" / "x.jpg", tmp_path / "t2" / "x.jpg"]
    with pytest.raises(ValueError, match=r"'x\.jpg'.*t1.*x\.jpg.*t2.*x\.jpg"):
        assign_clicks({"x.jpg": np.zeros((1, 2), np.float32)}, twins)


def test_an_ambiguous_click_file_stops_predict_before_any_output(compose, tmp_path, monkeypatch):
    class NoImageInference(RecordingInference):
        def __call__(self, image, clicks=None):
            raise AssertionError("no image may be segmented")

    monkeypatch.setitem(KINDS, "rootsam", NoImageInference)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.jpg", "a.png"):
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(folder / name)
    (tmp_path / "clicks.csv").write_text("image,x,y\na,1,2\n")
    monkeypatch.setattr("rootseg.inference.predictor.load_module", lambda path: FakeRootSAM())
    args = ["ckpt_path=r.ckpt", f"input={folder}", f"output={tmp_path / 'out'}", f"prompts={tmp_path / 'clicks.csv'}"]
    with pytest.raises(ValueError, match=r"'a'.*a\.jpg.*a\.png"):
        predict(compose("predict", args))
    assert not list((tmp_path / "out").glob("a*"))


def test_overlay_in_row_blocks_is_the_same_file(tmp_path):
    from rootseg.figures.overlay import overlay
    from rootseg.io.atomic import write_image

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (53, 41, 3), dtype=np.uint8)
    mask = rng.random((53, 41)) > 0.7
    write_overlay(tmp_path / "blocks.jpg", image, mask, rows=7, quality=90)
    write_image(tmp_path / "whole.jpg", overlay(image, mask), quality=90)
    assert (tmp_path / "blocks.jpg").read_bytes() == (tmp_path / "whole.jpg").read_bytes()


def test_a_memory_mapped_tiff_gives_the_same_outputs_as_its_png(run, tmp_path):
    import tifffile

    from rootseg.io.images import LazyImage, open_image

    sample = generate_sample(3, (170, 230)).image
    for kind in ("png", "tif"):
        folder = tmp_path / kind
        folder.mkdir()
        if kind == "png":
            Image.fromarray(sample).save(folder / "scan.png")
        else:
            tifffile.imwrite(folder / "scan.tif", sample, photometric="rgb")
            assert isinstance(open_image(folder / "scan.tif"), LazyImage)
        run(folder, tmp_path / f"out_{kind}", "save_probs=npy")
    for name in ("scan.png", "scan_rootpainter.png", "scan_overlay.jpg", "scan_prob.npy"):
        assert (tmp_path / "out_png" / name).read_bytes() == (tmp_path / "out_tif" / name).read_bytes(), name
    rows = [_rows(tmp_path / f"out_{kind}")[0] for kind in ("png", "tif")]
    assert rows[0]["root_length_px"] == rows[1]["root_length_px"]
