"""Mutation testing of the numeric core with mutmut 3, one module group at a time against its own fast tests.

`make mutation` runs every group; `python benchmarks/mutation.py losses tiling` runs some. Each group is
copied with the package and the tests into its own work folder (mutmut reads its settings from the
pyproject.toml in the folder it runs in, so each group gets one naming only its modules and its tests), run
under `nice`, and summarised: killed, survived, timeouts, no tests. The JSON printed at the end (and written
to `<workdir>/summary.json`) lists every surviving mutant with its diff; benchmarks/RESULTS.md records the
score and explains the survivors. Not part of `make test`: about an hour on two loaded cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: group -> (modules mutated, the fast test files that are their own tests)
MEASURE_TESTS = [
    "tests/measure/test_measure.py",
    "tests/measure/test_traits.py",
    "tests/measure/test_mutants_length.py",
    "tests/measure/test_mutants_topology.py",
    "tests/measure/test_mutants_traits.py",
]
GROUPS: dict[str, tuple[list[str], list[str]]] = {
    "losses": (["rootseg/tasks/losses.py"], ["tests/tasks/test_losses.py"]),
    "metrics": (["rootseg/metrics/pixels.py", "rootseg/metrics/patches.py"], ["tests/metrics/test_metrics.py"]),
    "measure": (
        [
            "rootseg/measure/length.py",
            "rootseg/measure/intersect.py",
            "rootseg/measure/agreement.py",
            "rootseg/measure/settings.py",
        ],
        MEASURE_TESTS,
    ),
    "traits": (
        [
            "rootseg/measure/topology.py",
            "rootseg/measure/skeleton.py",
            "rootseg/measure/traits.py",
            "rootseg/measure/diameter.py",
        ],
        MEASURE_TESTS,
    ),
    "tiling": (
        [
            "rootseg/tiling/training.py",
            "rootseg/tiling/grid.py",
            "rootseg/tiling/window.py",
            "rootseg/tiling/resize.py",
        ],
        [
            "tests/tiling/test_tiling.py",
            "tests/tiling/test_window.py",
            "tests/tiling/test_grid_edges.py",
            "tests/tiling/test_resize.py",
        ],
    ),
    "transforms": (
        ["rootseg/datamodules/transforms.py"],
        ["tests/datamodules/test_transforms.py", "tests/datamodules/test_transforms_paper.py"],
    ),
    "prompts": (
        ["rootseg/prompts/sampling.py"],
        ["tests/prompts/test_sampling.py", "tests/prompts/test_sampling_edges.py"],
    ),
    "settings": (
        ["rootseg/inference/settings.py", "rootseg/tiling/device.py"],
        ["tests/inference/test_settings_checks.py", "tests/tiling/test_device.py"],
    ),
    "splits": (["rootseg/sources/splits.py"], ["tests/sources/test_splits.py"]),
    "masks": (["rootseg/io/masks.py"], ["tests/io/test_mask_rules.py", "tests/io/test_mask_edges.py"]),
}


def _config(modules: list[str], tests: list[str]) -> str:
    quoted = ", ".join(f'"{m}"' for m in modules)
    selection = ", ".join(f'"{t}"' for t in tests)
    return (
        "[tool.mutmut]\n"
        'source_paths = ["rootseg"]\n'
        f"only_mutate = [{quoted}]\n"
        f"pytest_add_cli_args_test_selection = [{selection}]\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]\n'
        'also_copy = ["conf"]\n'
        "use_git_change_detection = false\n"
        # torch, OpenMP and albumentations are not fork-safe in a process that has already run the tests
        'process_isolation = "forkserver"\n'
        "\n[tool.pytest.ini_options]\n"
        'testpaths = ["tests"]\n'
        'addopts = "-ra --strict-markers"\n'
        'markers = ["slow: slow", "gpu: gpu", "realdata: realdata"]\n'
        'filterwarnings = ["ignore::DeprecationWarning", "ignore::UserWarning"]\n'
    )


def _prepare(folder: Path, modules: list[str], tests: list[str]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("rootseg", "tests", "conf"):
        shutil.copytree(REPO / name, folder / name, ignore=ignore)
    (folder / "pyproject.toml").write_text(_config(modules, tests))


def _results(folder: Path) -> dict[str, str]:
    """mutant name -> status, from the .meta files mutmut leaves beside each mutated module."""
    from mutmut.stats import status_by_exit_code

    statuses: dict[str, str] = {}
    for meta in (folder / "mutants").rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        for name, code in data.get("exit_code_by_key", {}).items():
            statuses[name] = status_by_exit_code[code]
    return statuses


def _diff(folder: Path, name: str, env: dict[str, str]) -> str:
    shown = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name], cwd=folder, env=env, capture_output=True, text=True
    )
    return "\n".join(line for line in shown.stdout.splitlines() if line.startswith(("+", "-")) and line[:3] != "---")


def _score(counts: dict[str, int]) -> tuple[int, int]:
    """(killed, counted): a timeout is a kill; a mutant no test reaches counts against the score, as a survivor."""
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    return killed, killed + counts.get("survived", 0) + counts.get("no tests", 0)


def run_group(name: str, workdir: Path, children: int, timeout: float) -> dict:
    modules, tests = GROUPS[name]
    folder = workdir / name
    _prepare(folder, modules, tests)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(NO_ALBUMENTATIONS_UPDATE="1", WANDB_MODE="offline", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    started = time.perf_counter()
    log = folder / "mutmut.log"
    with open(log, "w") as out:
        try:
            proc = subprocess.run(
                ["nice", "-n", "10", sys.executable, "-m", "mutmut", "run", "--max-children", str(children)],
                cwd=folder,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
            finished = proc.returncode == 0
        except subprocess.TimeoutExpired:
            finished = False
    statuses = _results(folder)
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    killed, checked = _score(counts)
    survivors = {m: _diff(folder, m, env) for m, s in sorted(statuses.items()) if s in ("survived", "no tests")}
    return {
        "group": name,
        "modules": modules,
        "tests": tests,
        "finished": finished,
        "seconds": round(time.perf_counter() - started, 1),
        "counts": counts,
        "score_percent": round(100 * killed / checked, 1) if checked else None,
        "survivors": survivors,
        "log": str(log),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help=f"some of {', '.join(GROUPS)} (default: every group)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "rootseg-mutation")
    parser.add_argument("--children", type=int, default=1, help="parallel mutant workers (default 1)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per group before it is stopped")
    args = parser.parse_args(argv)
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {unknown}; choose from {list(GROUPS)}")
    results = []
    for name in args.groups or list(GROUPS):
        result = run_group(name, args.workdir, args.children, args.timeout)
        print(
            f"{name}: {result['score_percent']}% killed {result['counts']} in {result['seconds']} s",
            file=sys.stderr,
        )
        results.append(result)
    totals: dict[str, int] = {}
    for result in results:
        for status, count in result["counts"].items():
            totals[status] = totals.get(status, 0) + count
    killed, checked = _score(totals)
    summary = {
        "score_percent": round(100 * killed / checked, 1) if checked else None,
        "counts": totals,
        "groups": results,
    }
    args.workdir.mkdir(parents=True, exist_ok=True)
    (args.workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
