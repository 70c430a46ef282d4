"""The bad-input corpus (tests/bad_inputs.py) through check, train (debug=fdr), eval and predict: every bad
file is refused with its name, every odd-but-valid file is read right. Only the 108 MP image skips eval and
predict (minutes of CPU sliding windows); check and train read it. The last test checks the figure that
benchmarks/bad_inputs.py prints ('N of M bad inputs handled') on the verdicts of the four commands."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from bad_inputs import Case, make_bad_corpus, run_check, run_eval, run_predict, run_train
from conftest import REPO

#: each command's verdicts, kept by the tests below for the figure (the last test runs any that is missing)
VERDICTS: dict[str, dict[str, tuple[bool, str]]] = {}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Case]:
    return make_bad_corpus(tmp_path_factory.mktemp("bad inputs é") / "cases")


@pytest.fixture
def work(tmp_path) -> Path:
    folder = tmp_path / "work dir é"
    folder.mkdir()
    return folder


def _assert_all(verdicts: dict[str, tuple[bool, str]], cases: list[Case], command: str) -> None:
    expected = {c.name for c in cases if command not in c.skip}
    assert set(verdicts) == expected
    failed = {name: detail for name, (ok, detail) in verdicts.items() if not ok}
    assert not failed, f"{command}: {len(failed)} case(s) not handled: {failed}"


def test_check_names_every_bad_file_and_reads_the_rest_right(corpus, work):
    VERDICTS["check"] = run_check(corpus, work)
    _assert_all(VERDICTS["check"], corpus, "check")


def test_train_refuses_bad_files_up_front_and_trains_on_the_rest(corpus, work):
    VERDICTS["train"] = run_train(corpus, work)
    _assert_all(VERDICTS["train"], corpus, "train")


def test_eval_names_the_bad_file_and_scores_the_rest(corpus, work, tiny_checkpoint):
    VERDICTS["eval"] = run_eval(corpus, work, tiny_checkpoint)
    _assert_all(VERDICTS["eval"], corpus, "eval")


def test_predict_skips_bad_files_by_name_and_writes_the_rest(corpus, work, tiny_checkpoint):
    VERDICTS["predict"] = run_predict(corpus, work, tiny_checkpoint)
    _assert_all(VERDICTS["predict"], corpus, "predict")


def _benchmark():
    """benchmarks/bad_inputs.py, imported by path (it shares its module name with tests/bad_inputs.py)."""
    spec = importlib.util.spec_from_file_location("bad_inputs_benchmark", REPO / "benchmarks" / "bad_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_handled_figure_counts_only_cases_every_command_ran(corpus, tmp_path, request):
    """'N of M bad inputs handled': M is the corpus, N the cases every command ran and handled; the 108 MP
    image, which eval and predict skip, is named instead of counted; a failure lowers N and is named."""
    bench = _benchmark()
    runners = {"check": run_check, "train": run_train, "eval": run_eval, "predict": run_predict}
    for command in bench.COMMANDS:  # under `-k` the command tests may not have run
        if command not in VERDICTS:
            work = tmp_path / command
            work.mkdir()
            extra = [request.getfixturevalue("tiny_checkpoint")] if command in ("eval", "predict") else []
            VERDICTS[command] = runners[command](corpus, work, *extra)
    result = bench.tally(corpus, VERDICTS)
    everywhere = [c.name for c in corpus if not set(c.skip) & set(bench.COMMANDS)]
    skipped = {c.name: [cmd for cmd in bench.COMMANDS if cmd in c.skip] for c in corpus if c.skip}
    assert skipped, "the corpus has a case some command skips (the 108 MP image)"
    assert (result["handled"], result["total"], result["skipped"], result["failed"]) == (
        len(everywhere),
        len(corpus),
        skipped,
        [],
    )
    named = "; ".join(f"{name} ({', '.join(cmds)})" for name, cmds in skipped.items())
    lines = bench.summary_lines(result)
    assert lines[0] == (
        f"{len(everywhere)} of {len(corpus)} bad inputs handled; not counted, skipped by some command: {named}"
    )
    runs = {cmd: sum(cmd not in c.skip for c in corpus) for cmd in bench.COMMANDS}
    assert lines[-1] == "per command: " + ", ".join(f"{cmd} {n} of {n}" for cmd, n in runs.items())
    # one case failing one command: one fewer handled, and named
    victim = everywhere[0]
    broken = {**VERDICTS, "eval": {**VERDICTS["eval"], victim: (False, "no row in per_image.csv")}}
    worse = bench.tally(corpus, broken)
    assert worse["handled"] == len(everywhere) - 1 and worse["failed"] == [victim]
    assert bench.summary_lines(worse)[1] == f"not handled: {victim}"
