"""Peak memory of `python -m rootseg.eval` on 13 and on 52 SegRoot scans: eval keeps per-image numbers, not
per-image arrays, so the peak should not grow with the number of images (goal: within 15 %).

    python benchmarks/eval_memory.py --ckpt CKPT [--segroot ../shared/datasets/segroot] [--grid]
    python benchmarks/eval_memory.py --untrained unet_smith2020 --grid    # random weights: memory only

Each eval runs as its own process; its peak resident memory is the kernel's ru_maxrss for that child
(`os.wait4`). Prints one JSON object. Needs the real SegRoot folder (52 scans of 2550 x 2273) and a U-Net
checkpoint (`make demo` writes one under logs/train/runs/), or `--untrained EXPERIMENT`: that experiment's model
with random weights (the peak does not depend on the weights; its F1 means nothing). `--grid` uses Smith's grid
(step=tile), ~4x faster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def newest_checkpoint() -> Path | None:
    found = sorted((REPO / "logs" / "train" / "runs").glob("*/checkpoints/*.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def untrained(experiment: str, segroot: Path, folder: Path) -> Path:
    """A random-weights checkpoint of `+experiment=EXPERIMENT data=segroot`, as rootseg.train writes one."""
    from hydra.errors import HydraException

    from rootseg.config.run_config import compose_task
    from rootseg.tasks.checkpoints import write_untrained

    overrides = [f"+experiment={experiment}", "data=segroot", f"data.root={segroot}", f"paths.data_dir={folder}"]
    try:
        cfg = compose_task("train", overrides, folder)
    except HydraException as error:
        raise SystemExit(
            f"--untrained {experiment}: no such experiment in conf/experiment/ ({str(error).splitlines()[0]})"
        ) from None
    return write_untrained(cfg, folder / f"{experiment}_untrained.ckpt")


def run_eval(ckpt: Path, segroot: Path, split: str, run_dir: Path, extra: list[str]) -> dict:
    command = [
        sys.executable,
        "-m",
        "rootseg.eval",
        f"ckpt_path={ckpt}",
        "data=segroot",
        f"data.root={segroot}",
        f"split={split}",
        "figures=0",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = process.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"eval of split={split} failed ({process.returncode}):\n{stderr[-2000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "split": split,
        "images": summary["n_images"],
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # kilobytes on Linux
        "seconds": round(time.perf_counter() - start, 1),
        "pooled_f1": summary["pooled"]["f1"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, default=None, help="U-Net checkpoint (default: newest under logs/)")
    parser.add_argument("--segroot", type=Path, default=REPO.parent / "shared" / "datasets" / "segroot")
    parser.add_argument("--grid", action="store_true", help="Smith's grid (step=tile) instead of blended windows")
    parser.add_argument("--untrained", metavar="EXPERIMENT", help="a random-weights model of this experiment")
    args = parser.parse_args()
    if not (args.segroot / "split.json").is_file():
        raise SystemExit(f"{args.segroot}: the SegRoot folder is absent; pass --segroot DIR")
    extra = ["step=tile"] if args.grid else []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = (
            untrained(args.untrained, args.segroot, Path(tmp)) if args.untrained else args.ckpt or newest_checkpoint()
        )
        if ckpt is None or not ckpt.is_file():
            raise SystemExit("no checkpoint: pass --ckpt or --untrained EXPERIMENT, or run `make demo` first")
        few = run_eval(ckpt, args.segroot, "val", Path(tmp) / "val", extra)
        many = run_eval(ckpt, args.segroot, "all", Path(tmp) / "all", extra)
    growth = many["peak_rss_mb"] / few["peak_rss_mb"] - 1
    print(
        json.dumps(
            {
                "benchmark": "eval_memory",
                "checkpoint": f"untrained {args.untrained} (random weights)" if args.untrained else str(ckpt),
                "window": "step=tile" if args.grid else "default (half-tile Gaussian)",
                "runs": [few, many],
                "peak_growth_13_to_52": round(growth, 4),
                "goal": "peak on 52 within 15 % of the peak on 13",
                "met": growth <= 0.15,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "load_average": os.getloadavg(),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
