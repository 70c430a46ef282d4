"""Hand-applied mutants: a fixed, reviewed list of one-line changes (`hand_mutant_specs.py`), each applied in turn
to a copy of the package and run against its module's fast tests.

A sample, not a mutmut score: mutmut (`benchmarks/mutation.py`) generates every mutant of a module and takes
about an hour per group on two loaded cores; this list takes minutes and is chosen to probe what users get
(comparison flips, off-by-one, constants, removed checks, swapped arguments). A mutant is killed when the
tests fail (or fail to import). `python benchmarks/hand_mutants.py topology settings` runs some groups and
prints one JSON line per group as it finishes; benchmarks/RESULTS.md records the results and says why each
mutant marked equivalent is.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hand_mutant_specs import GROUPS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _copy(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("rootseg", "tests", "conf"):
        shutil.copytree(REPO / name, folder / name, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", folder / "pyproject.toml")


def _run_tests(folder: Path, tests: list[str], timeout: float) -> int:
    env = {**os.environ, "PYTHONPATH": str(folder), "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "offline"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", *tests]
    try:
        return subprocess.run(command, cwd=folder, env=env, capture_output=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return -1  # a mutant that hangs the tests is caught (as mutmut counts a timeout)


def run_group(name: str, folder: Path, timeout: float, skip: frozenset = frozenset()) -> dict:
    """Apply each mutant of the group in turn (those in `skip`, (module, text, replacement), were killed before)."""
    tests, mutants = GROUPS[name]
    mutants = [m for m in mutants if tuple(m[:3]) not in skip]
    started = time.perf_counter()
    if _run_tests(folder, tests, timeout) != 0:
        raise SystemExit(f"{name}: the tests fail without a mutant; fix them first")
    results = []
    for path, old, new, note in mutants:
        source = (folder / path).read_text()
        if source.count(old) != 1:
            raise SystemExit(f"{name}: {old!r} occurs {source.count(old)} times in {path}, not once")
        (folder / path).write_text(source.replace(old, new))
        try:
            code = _run_tests(folder, tests, timeout)
        finally:
            (folder / path).write_text(source)
        status = "survived" if code == 0 else "killed"
        if status == "survived" and note:
            status = "equivalent"
        results.append({"module": path, "from": old, "to": new, "status": status, "note": note})
    counted = [r for r in results if r["status"] != "equivalent"]
    killed = sum(r["status"] == "killed" for r in counted)
    return {
        "group": name,
        "tests": tests,
        "mutants": len(results),
        "killed": killed,
        "equivalent": len(results) - len(counted),
        "survived": len(counted) - killed,
        "score_percent": round(100 * killed / len(counted), 1) if counted else None,
        "seconds": round(time.perf_counter() - started, 1),
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help=f"some of {', '.join(GROUPS)} (default: every group)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per test run before a mutant is killed")
    parser.add_argument("--survivors", action="store_true", help="print only the mutants that survived")
    parser.add_argument("--retry", type=Path, help="the output of an earlier run: apply only what it did not kill")
    args = parser.parse_args(argv)
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {unknown}; choose from {list(GROUPS)}")
    skip = frozenset()
    if args.retry:
        runs = [json.loads(line) for line in args.retry.read_text().splitlines() if line.strip()]
        killed = [r for run in runs for r in run["results"] if r["status"] == "killed"]
        skip = frozenset((r["module"], r["from"], r["to"]) for r in killed)
    with tempfile.TemporaryDirectory(prefix="rootseg-hand-mutants-") as tmp:
        folder = Path(tmp) / "copy"
        _copy(folder)
        for name in args.groups or list(GROUPS):
            result = run_group(name, folder, args.timeout, skip)
            score = f"{result['score_percent']}% of {result['mutants']}"
            print(f"{name}: {score} in {result['seconds']} s", file=sys.stderr)
            if args.survivors:
                result["results"] = [r for r in result["results"] if r["status"] != "killed"]
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
