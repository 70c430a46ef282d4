"""`python benchmarks/bad_inputs.py`: the bad-input corpus through check, train (debug=fdr), eval and predict
on the CPU; prints each case's outcome per command as JSON and `N of M bad inputs handled`: M is the number of
cases in the corpus, N those exercised by every command and handled as expected in each. A case that a
command skipped is not counted as handled; it is named with the commands that skipped it, and a per-command
line gives each command's own figure. The 108 MP image is predicted at full size with a stand-in for the
network (benchmarks/bad_input_corpus.py: `brightness_net`, checked against its NumPy mask, `"stand_in": true` in the
table).

The command corpus (benchmarks/bad_command_corpus.py: settings, folder layouts, click files, report, study,
export and download inputs; issue 26) runs after it, each case through its own command in this process; its
figure counts the cases handled (the expected refusal or checked output, and no file of the user's changed).
The last line is the total over both: `N of M bad inputs handled: files A of B, commands C of D`.
`--commands-only` runs only the command corpus (~40 s instead of ~4 min).

Exit status 1 when a case that ran was not handled."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from bad_command_corpus import make_command_corpus  # noqa: E402
from bad_command_runner import make_kit, run_commands  # noqa: E402
from bad_input_corpus import make_bad_corpus, run_check, run_eval, run_predict, run_train  # noqa: E402

from rootseg.config.run_config import compose_task  # noqa: E402

COMMANDS = ("check", "train", "eval", "predict")


def tally(cases: list, results: dict[str, dict[str, tuple[bool, str]]]) -> dict:
    """Outcome table and figures from each command's verdicts (`results[command][case name] = (ok, detail)`).

    A case is handled when every command in COMMANDS ran it and it met its expected outcome in each; a case
    some command did not run (skipped by the corpus, or absent from that command's verdicts) is not handled
    but `skipped`, never counted as a success."""
    table: dict[str, dict] = {}
    skipped: dict[str, list[str]] = {}
    failed: list[str] = []
    per_command = {cmd: {"handled": 0, "run": 0, "skipped": []} for cmd in COMMANDS}
    for case in cases:
        outcome: dict[str, dict] = {}
        for cmd in COMMANDS:
            verdict = results.get(cmd, {}).get(case.name)
            if verdict is None:
                why = case.skip.get(cmd, "no verdict")
                outcome[cmd] = {"ok": None, "detail": f"not run: {why}"}
                skipped.setdefault(case.name, []).append(cmd)
                per_command[cmd]["skipped"].append(case.name)
            else:
                outcome[cmd] = {"ok": bool(verdict[0]), "detail": verdict[1]}
                per_command[cmd]["run"] += 1
                per_command[cmd]["handled"] += bool(verdict[0])
        ran = [o["ok"] for o in outcome.values() if o["ok"] is not None]
        if not all(ran):
            failed.append(case.name)
        table[case.name] = {
            "expected": f"error: {case.data_error}" if case.expects_error else "handled",
            "stand_in": bool(getattr(case, "stand_in", False)),
            "handled": case.name not in skipped and all(ran),
            **outcome,
        }
    handled = sum(row["handled"] for row in table.values())
    return {
        "table": table,
        "handled": handled,
        "total": len(table),
        "skipped": skipped,
        "failed": failed,
        "per_command": per_command,
    }


def summary_lines(result: dict) -> list[str]:
    """`N of M bad inputs handled`, the skipped cases by name, the failures, and each command's figure."""
    first = f"{result['handled']} of {result['total']} bad inputs handled"
    if result["skipped"]:
        named = "; ".join(f"{name} ({', '.join(cmds)})" for name, cmds in result["skipped"].items())
        first += f"; not counted, skipped by some command: {named}"
    lines = [first]
    if result["failed"]:
        lines.append(f"not handled: {', '.join(result['failed'])}")
    lines.append(
        "per command: " + ", ".join(f"{cmd} {c['handled']} of {c['run']}" for cmd, c in result["per_command"].items())
    )
    return lines


def command_tally(cases: list, verdicts: dict[str, tuple[bool, str]]) -> dict:
    """The command corpus's table and figures: a case is handled when its verdict says so; a case without a
    verdict is not run, named, and not counted as handled."""
    table, failed, not_run = {}, [], []
    per_kind: dict[str, dict[str, int]] = {}
    for case in cases:
        verdict = verdicts.get(case.name)
        kind = per_kind.setdefault(case.kind, {"handled": 0, "total": 0})
        kind["total"] += 1
        if verdict is None:
            not_run.append(case.name)
            table[case.name] = {"command": case.command, "kind": case.kind, "handled": False, "detail": "not run"}
            continue
        kind["handled"] += bool(verdict[0])
        if not verdict[0]:
            failed.append(case.name)
        table[case.name] = {
            "command": case.command,
            "kind": case.kind,
            "handled": bool(verdict[0]),
            "detail": verdict[1],
        }
    handled = sum(row["handled"] for row in table.values())
    return {
        "table": table,
        "handled": handled,
        "total": len(cases),
        "failed": failed,
        "not_run": not_run,
        "per_kind": per_kind,
    }


def command_lines(result: dict) -> list[str]:
    """`commands: C of D handled`, the cases not handled or not run by name, and the figure of each kind."""
    lines = [f"commands: {result['handled']} of {result['total']} handled"]
    if result["failed"]:
        lines.append(f"commands not handled: {', '.join(result['failed'])}")
    if result["not_run"]:
        lines.append(f"commands not run: {', '.join(result['not_run'])}")
    kinds = ", ".join(f"{kind} {c['handled']} of {c['total']}" for kind, c in result["per_kind"].items())
    return [*lines, f"per kind: {kinds}"]


def total_line(files: dict | None, commands: dict) -> str:
    """`N of M bad inputs handled: files A of B, commands C of D` (without the files corpus: its part says so)."""
    handled = commands["handled"] + (files["handled"] if files else 0)
    total = commands["total"] + (files["total"] if files else 0)
    part = f"files {files['handled']} of {files['total']}" if files else "files not run (--commands-only)"
    return f"{handled} of {total} bad inputs handled: {part}, commands {commands['handled']} of {commands['total']}"


def tiny_checkpoint(work: Path) -> Path:
    """The tests' tiny_checkpoint: unet_tiny, two short epochs on 12 small synthetic images."""
    from rootseg.synthetic.dataset import write_dataset
    from rootseg.tasks.fit import train

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
    return Path(train(compose_task("train", overrides, work / "tiny_run"))["best_checkpoint"])


def run_files(work: Path) -> dict:
    """The files corpus through the four commands (with a trained tiny checkpoint); its tally."""
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
    return tally(cases, results)


def main() -> None:
    parser = argparse.ArgumentParser(description="Both bad-input corpora: files, then commands.")
    parser.add_argument("--commands-only", action="store_true", help="run only the command corpus")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rootseg bad inputs é ") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        files = None if args.commands_only else run_files(work / "files")
        between = time.perf_counter()
        cases = make_command_corpus()
        commands = command_tally(cases, run_commands(cases, work / "commands", make_kit(work / "kit")))
        seconds = {
            "files": round(between - started, 1) if files else None,
            "commands": round(time.perf_counter() - between, 1),
        }
        table = {"seconds": seconds, "commands": commands["table"]}
        if files:
            table["cases"] = files["table"]
        print(json.dumps(table, indent=1, ensure_ascii=False))
        if files:
            lines = summary_lines(files)
            print("\n".join([f"files: {lines[0]}", *lines[1:]]))
        print("\n".join(command_lines(commands)))
        print(total_line(files, commands))
        sys.exit(1 if commands["failed"] or commands["not_run"] or (files and files["failed"]) else 0)


if __name__ == "__main__":
    main()
