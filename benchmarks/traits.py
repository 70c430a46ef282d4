"""What the root traits cost per scan: `root_traits` on SegRoot's 2550 x 2273 annotations, against the root
length alone (`skeleton_length`), in CPU seconds (what the work costs on a shared machine), wall seconds and
peak traced memory (numpy's allocations; tracemalloc).

    python benchmarks/traits.py [--n 6]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from rootseg.io.masks import read_mask
from rootseg.measure.length import skeleton_length
from rootseg.measure.traits import pixel_traits, root_traits

REPO = Path(__file__).resolve().parents[1]
SEGROOT = Path(os.environ.get("ROOTSEG_SHARED", REPO.parent / "shared")) / "datasets" / "segroot"


def _cost(function, masks: list[np.ndarray]) -> dict[str, float]:
    cpu, wall, peak = [], [], []
    for mask in masks:
        tracemalloc.start()
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        function(mask)
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started_wall)
        peak.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    return {
        "cpu_s_mean": round(float(np.mean(cpu)), 3),
        "cpu_s_max": round(float(np.max(cpu)), 3),
        "wall_s_mean": round(float(np.mean(wall)), 3),
        "peak_mb_max": round(float(np.max(peak)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6, help="SegRoot masks, evenly spaced over the sorted 52")
    args = parser.parse_args()
    paths = sorted((SEGROOT / "masks").glob("*-mask.jpg"))
    if not paths:
        raise SystemExit(f"no SegRoot masks under {SEGROOT}")
    chosen = [paths[i] for i in np.linspace(0, len(paths) - 1, args.n).round().astype(int)]
    masks = [read_mask(p) == 1 for p in chosen]
    root_traits(masks[0][:64, :64])  # imports out of the timing
    result: dict[str, Any] = {
        "n": len(masks),
        "shape": list(masks[0].shape),
        "root_fraction": [round(float(m.mean()), 4) for m in masks],
        "skeleton_length": _cost(skeleton_length, masks),
        "root_traits": _cost(lambda m: root_traits(m, 25.4 / 300), masks),
        "predict_record": _cost(lambda m: pixel_traits(m, length_method="corrected"), masks),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
