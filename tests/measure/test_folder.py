"""`measure_masks` never writes its CSV onto a mask it measures, whatever name the output is given by."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from rootseg.measure.folder import measure_masks


@pytest.fixture
def victim(tmp_path):
    mask = np.zeros((40, 50), np.uint8)
    mask[10:30, 20:24] = 255
    path = tmp_path / "masks" / "victim.png"
    path.parent.mkdir()
    Image.fromarray(mask).save(path)
    return path


def _names(victim):
    (victim.parent / "sub").mkdir()
    os.symlink(victim, victim.parent / "link.png")
    os.link(victim, victim.parent / "hard.png")
    return {
        "same path": victim,
        "through ..": victim.parent / "sub" / ".." / "victim.png",
        "through a symbolic link": victim.parent / "link.png",
        "a hard link": victim.parent / "hard.png",
    }


def test_an_output_that_is_a_measured_mask_is_refused_and_the_mask_kept(victim):
    before = victim.read_bytes()
    for how, output in _names(victim).items():
        with pytest.raises(ValueError, match=r"victim\.png\): writing it would overwrite"):
            measure_masks([victim], output)
        assert victim.read_bytes() == before, how
    output = victim.parent / "traits.csv"  # beside the masks is fine
    assert measure_masks([victim], output)["measured"] == 1 and output.is_file()
    assert victim.read_bytes() == before


def test_predicts_rhizovision_mask_is_read_root_dark(victim, tmp_path):
    """predict's `<stem>_rve.png` holds root black on white (issue 26: measure measured its background): read
    by its name as RhizoVision Explorer reads it, it gives the traits of the mask it was written from."""
    import pandas as pd

    from rootseg.io.rhizovision import write_rhizovision_mask

    root = np.asarray(Image.open(victim)) > 0
    rve = write_rhizovision_mask(tmp_path / "out" / "victim_rve.png", root)
    other = write_rhizovision_mask(tmp_path / "out" / "victim_rve.jpg.png", root)  # stem ends in .jpg: not the name
    measure_masks([victim, rve, other], tmp_path / "traits.csv")
    table = pd.read_csv(tmp_path / "traits.csv").set_index("name")
    columns = ["projected_area_px2", "length_px", "tips", "connected_roots"]
    assert table.loc["victim_rve.png", columns].tolist() == table.loc["victim.png", columns].tolist()
    assert table.loc["victim.png", "projected_area_px2"] == root.sum() == 80
    assert table.loc["victim_rve.jpg.png", "projected_area_px2"] == root.size - 80  # an ordinary mask: root bright
