"""Inputs that lead nowhere are counted and named, never dropped: a dangling symbolic link or a link loop in a
predict folder or glob becomes a job whose reading fails with what is wrong (rootseg.inference.jobs,
rootseg.io.images.missing_file); predict then lists it in failures.csv and exits 1, as for unreadable images
(the bad-input corpus runs that: benchmarks/bad_input_corpus.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from rootseg.inference.jobs import find_images, plan_jobs
from rootseg.io.images import ImageReadError, open_image, read_image


@pytest.fixture
def folder(tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(scans / "good.png")
    os.symlink("moved.png", scans / "dangling.png")
    os.symlink("loop.png", scans / "loop.png")
    os.symlink("b.jpg", scans / "a.jpg")
    os.symlink("a.jpg", scans / "b.jpg")
    os.symlink(str(tmp_path), scans / "folder.png")
    return scans


def test_links_that_lead_nowhere_are_jobs_not_dropped(folder, tmp_path):
    names = ["a.jpg", "b.jpg", "dangling.png", "folder.png", "good.png", "loop.png"]
    assert [p.name for p in find_images(folder)] == names
    assert [p.name for p in find_images(str(folder / "*.*"))] == names
    jobs = plan_jobs(find_images(folder), tmp_path / "out")  # resolving a loop raised RuntimeError
    assert [job.stem for job in jobs] == ["a", "b", "dangling", "folder", "good", "loop"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("dangling.png", "a symbolic link to moved.png, which does not exist (dangling)"),
        ("loop.png", "a symbolic link that loops (too many levels of symbolic links)"),
        ("a.jpg", "a symbolic link that loops (too many levels of symbolic links)"),
        ("folder.png", "a symbolic link to @, which is not a file"),
        ("absent.png", "no such file"),
    ],
)
def test_reading_a_link_that_leads_nowhere_says_why(folder, name, text):
    for read in (read_image, open_image):
        with pytest.raises(ImageReadError) as error:
            read(folder / name)
        assert str(error.value) == f"{folder / name}: {text.replace('@', str(folder.parent))}"
