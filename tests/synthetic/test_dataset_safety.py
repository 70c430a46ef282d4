"""A synthetic set replaces only an earlier set: never a user's file or folder (issue 26)."""

from __future__ import annotations

import json
import os

import pytest

from rootseg.synthetic.dataset import write_dataset

SMALL = (96, 128)


def test_write_dataset_refuses_a_folder_it_did_not_make(tmp_path):
    """A folder of the user's files, or a set with a user's file added, is never deleted; a file is refused."""
    user = tmp_path / "thesis"
    user.mkdir()
    (user / "chapter1.tex").write_text("years of work")
    with pytest.raises(ValueError, match="holds other files and no synthetic set"):
        write_dataset(user, 2, SMALL)
    assert (user / "chapter1.tex").read_text() == "years of work"
    assert sorted(p.name for p in user.iterdir()) == ["chapter1.tex"]

    lone = tmp_path / "notes.txt"
    lone.write_text("keep")
    with pytest.raises(ValueError, match="is a file"):
        write_dataset(lone, 2, SMALL)
    assert lone.read_text() == "keep"

    made = write_dataset(tmp_path / "set", 2, SMALL, seed=1)
    (made / "images" / "my_scan.png").write_bytes(b"mine")
    with pytest.raises(ValueError, match="images/my_scan.png, which no set wrote"):
        write_dataset(made, 3, SMALL, seed=2)
    assert (made / "images" / "my_scan.png").read_bytes() == b"mine"


def test_write_dataset_replaces_its_own_set_and_fills_an_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(list((write_dataset(empty, 2, SMALL) / "images").iterdir())) == 2
    write_dataset(empty, 3, SMALL, seed=4)  # its own set: replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # no folder left beside it
    umask = os.umask(0)
    os.umask(umask)
    assert empty.stat().st_mode & 0o777 == 0o777 & ~umask  # as any new folder, not a temporary one's 0700
    assert json.loads((empty / "manifest.json").read_text())["n"] == 3
    assert sorted(p.name for p in (empty / "images").iterdir()) == [f"synth_{i:04d}.png" for i in range(3)]
