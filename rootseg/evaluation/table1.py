"""RootSAM's Table 1 from eval runs: one row per method (baseline / stage 1 / stage 1+2), mIoU, Dice and mAP
on the 512 px patches of the stage 1 grid and the 1024 px patches of the stage 2 grid.

Each eval run scores one grid (`stage=stage1|stage2`, summary.json's `stage_patches`), so a method's row
gathers the runs given the same name, e.g.

    python -m rootseg.report base@512 base@1024 s1@512 s1@1024 s12@512 s12@1024 \
        --names baseline baseline "stage 1" "stage 1" "stage 1+2" "stage 1+2"
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from rootseg.io.tables import markdown_table

log = logging.getLogger(__name__)

#: the paper's two scales: 512 px patches of the 2560 px grid, 1024 px patches of the 2048 px grid
SCALES = (512, 1024)
METRICS = (("mIoU", "iou"), ("Dice", "dice"), ("mAP", "ap"))


def table1_rows(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method name (in first-seen order) with every scale one of its runs scored; [] when no run
    scored a stage grid. A scale no run of the method scored is left empty (NaN)."""
    rows: dict[str, dict[str, Any]] = {}
    for run in runs:
        stage = run["summary"].get("stage_patches")
        if not stage:
            continue
        row = rows.setdefault(run["name"], {"method": run["name"], "grids": []})
        patch = int(stage["patch"])
        if f"mIoU@{patch}" in row:
            log.warning(
                "%s: two runs scored %d px patches; the table keeps the first (%s)", run["name"], patch, run["dir"]
            )
            continue
        for label, key in METRICS:
            row[f"{label}@{patch}"] = stage[key]
        row["grids"].append(f"{stage['stage']}: {stage['resize']}/{patch}")
    table = []
    for row in rows.values():
        for scale in SCALES:
            for label, _ in METRICS:
                row.setdefault(f"{label}@{scale}", float("nan"))
        row["grids"] = ", ".join(row["grids"])
        table.append(row)
    return table


def table1_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The table in the paper's column order, or "" without rows."""
    if not rows:
        return ""
    columns = ["method", *(f"{label}@{scale}" for scale in SCALES for label, _ in METRICS), "grids"]
    return (
        "\n## RootSAM Table 1 (patches of the stage grids: 512 px of 2560, 1024 px of 2048)\n\n"
        "One row per method name; each eval run (`stage=stage1|stage2`) fills its scale.\n\n"
        + markdown_table(list(rows), columns)
    )
