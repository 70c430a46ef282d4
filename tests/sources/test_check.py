import subprocess
import sys

import numpy as np
from conftest import REPO
from PIL import Image

from rootseg.sources.check import check_source
from rootseg.sources.folder import FolderSource


def _pair(root, stem, image, mask, mask_ext=".png"):
    Image.fromarray(image).save(root / "images" / f"{stem}.png")
    Image.fromarray(mask).save(root / "masks" / f"{stem}{mask_ext}")


def test_check_reports_every_problem_with_its_file(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    good = np.zeros((30, 40), np.uint8)
    good[5:10] = 255
    rgb = np.zeros((30, 40, 3), np.uint8)
    _pair(tmp_path, "good", rgb, good)
    _pair(tmp_path, "grey_levels", rgb, np.array([[0, 128, 255]] * 30, np.uint8).repeat(14, 1)[:, :40])
    _pair(tmp_path, "wrong_size", rgb, np.zeros((31, 40), np.uint8))
    _pair(tmp_path, "empty_mask", rgb, np.zeros((30, 40), np.uint8))
    (tmp_path / "images" / "broken.png").write_bytes(b"this is text")
    Image.fromarray(good).save(tmp_path / "masks" / "broken.png")
    Image.fromarray(rgb).save(tmp_path / "images" / "lonely.png")
    report = check_source(FolderSource(tmp_path))
    assert "lonely.png: image has no mask" in report.text()
    errors = {p.path.split("/")[-1]: p.message for p in report.errors}
    warnings = {p.path.split("/")[-1]: p.message for p in report.problems if not p.error}
    assert set(errors) == {"lonely.png", "broken.png", "wrong_size.png"}
    assert "cannot decode" in errors["broken.png"] and "31" not in errors["broken.png"]
    assert "40x31" in errors["wrong_size.png"]
    assert "[0, 128, 255]" in warnings["grey_levels.png"]
    assert "no root" in warnings["empty_mask.png"]
    assert report.split_stats["all"]["n"] == 5 and report.split_stats["all"]["readable"] == 3
    (tmp_path / "images" / "lonely.png").unlink()
    report = check_source(FolderSource(tmp_path))  # layout fixed: now per split
    assert report.split_stats["train"]["n"] + report.split_stats["val"]["n"] == 5


def _check_command(root) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "rootseg.check", "data=folder", f"data.root={root}"]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_check_command_on_a_good_set_exits_zero(synthetic_dir):
    run = _check_command(synthetic_dir)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "0 error(s)" in run.stdout and "train" in run.stdout


def test_check_command_on_a_bad_set_names_the_file_once_and_exits_two(tmp_path):
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    rgb = np.zeros((30, 40, 3), np.uint8)
    mask = np.zeros((30, 40), np.uint8)
    mask[5:10] = 255
    for stem in ("a", "b", "c"):
        _pair(tmp_path, stem, rgb, mask)
    _pair(tmp_path, "wrong_size", rgb, np.zeros((31, 40), np.uint8))
    run = _check_command(tmp_path)
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    assert run.stdout.count("wrong_size.png: mask is 40x31") == 1 and "1 error(s)" in run.stdout
    assert "hint" not in run.stderr
