"""`python benchmarks/bad_inputs.py`: the bad-input corpus through check, train (debug=fdr), eval and predict
on the CPU; prints each case's outcome per command as JSON and `N of N bad inputs handled` (a case counts
when it met its expected outcome in every command that ran it)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bad_inputs import compose_run, make_bad_corpus, run_check, run_eval, run_predict, run_train  # noqa: E402


def tiny_checkpoint(work: Path) -> Path:
    """The tests' tiny_checkpoint: unet_tiny, two short epochs on 12 small synthetic images."""
    from rootseg.data.synthetic import write_dataset
    from rootseg.train import train

    data = write_dataset(work / "synthetic", n=12, size=(192, 160), seed=5)
    overrides = [
        "+experiment=unet_demo",
        "debug=limit",
        "trainer.max_epochs=2",
        "data.max_tiles_per_image=2",
        "data.batch_size=4",
        "data=folder",
        f"data.root='{data}'",
        "logger=csv",
    ]
    return Path(train(compose_run("train", overrides, work / "tiny_run"))["best_checkpoint"])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rootseg bad inputs é ") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        cases = make_bad_corpus(work / "cases")
        ckpt = tiny_checkpoint(work)
        results = {}
        for command, runner in (
            ("check", lambda: run_check(cases, work / "check")),
            ("train", lambda: run_train(cases, work / "train")),
            ("eval", lambda: run_eval(cases, work / "eval", ckpt)),
            ("predict", lambda: run_predict(cases, work / "predict", ckpt)),
        ):
            (work / command).mkdir()
            results[command] = runner()
        table = {}
        for case in cases:
            outcome = {
                cmd: {"ok": v[case.name][0], "detail": v[case.name][1]} for cmd, v in results.items() if case.name in v
            }
            outcome.update({cmd: {"ok": None, "detail": f"not run: {why}"} for cmd, why in case.skip.items()})
            table[case.name] = {
                "expected": f"error: {case.data_error}" if case.expects_error else "handled",
                "handled": all(o["ok"] is not False for o in outcome.values()),
                **outcome,
            }
        print(
            json.dumps(
                {"seconds": round(time.perf_counter() - started, 1), "cases": table}, indent=1, ensure_ascii=False
            )
        )
        handled = sum(row["handled"] for row in table.values())
        print(f"{handled} of {len(table)} bad inputs handled")
        sys.exit(0 if handled == len(table) else 1)


if __name__ == "__main__":
    main()
