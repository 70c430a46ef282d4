"""Notebooks are committed with outputs stripped, and their code still runs against rootseg's current API."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest
from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text())["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_outputs_are_stripped(path):
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name}: clear the outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_cells_run_in_order(path, monkeypatch, tiny_checkpoint):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("ROOTSEG_CKPT", str(tiny_checkpoint))  # the model cell runs too
    monkeypatch.chdir(path.parent)  # notebooks use paths relative to their folder, as Jupyter runs them
    namespace: dict = {"__name__": "__notebook__"}
    try:
        for index, source in enumerate(_code_cells(path)):
            exec(compile(source, f"{path.name}[cell {index}]", "exec"), namespace)
    finally:
        plt.close("all")
    assert namespace["image"].shape[:2] == namespace["mask"].shape  # what the later cells measured
    if "tour" in path.name:  # the model cell predicted the scan with the checkpoint it was given
        assert namespace["CKPT"] == str(tiny_checkpoint)
        assert namespace["pred"].shape == namespace["mask"].shape and namespace["pred"].dtype == bool


def test_there_is_a_notebook():
    assert NOTEBOOKS, "notebooks/ holds no notebook"
