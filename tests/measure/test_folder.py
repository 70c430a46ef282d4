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
