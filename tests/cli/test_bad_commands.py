"""The command corpus (benchmarks/bad_command_corpus.py): every bad command line of issue 26's kinds is refused in
one paragraph naming the key or file (exit 2), or gives the right output, and never changes or deletes a file that
was there before it ran. Then the verdict's rules, each shown to catch what it names, and the figures
benchmarks/bad_inputs.py prints."""

from __future__ import annotations

import pytest
from bad_command_corpus import make_command_corpus
from bad_command_runner import USER_ERROR, CommandCase, Outcome, file_hashes, judge, make_kit, run_case
from conftest import bad_inputs_benchmark

CASES = make_command_corpus()


@pytest.fixture(scope="module")
def kit(tmp_path_factory, unet_ckpt, micro_rootsam_ckpt):
    return make_kit(tmp_path_factory.mktemp("command kit é"), unet_ckpt, micro_rootsam_ckpt)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_bad_command_is_handled_and_no_file_changes(case, kit, tmp_path):
    handled, detail = run_case(case, tmp_path / "cases é", kit)
    assert handled, detail


def test_the_corpus_covers_issue_26s_kinds():
    kinds = {case.kind for case in CASES}
    assert kinds == {"settings", "layout", "clicks", "report", "study", "download"}
    commands = {case.command for case in CASES}
    assert commands == {"predict", "train", "eval", "export", "annotate", "measure", "synthesize", "study", "report",
                        "download"}  # fmt: skip
    refusals = [case for case in CASES if case.exit_code == USER_ERROR]
    assert all(case.says for case in refusals) and len(CASES) >= 60


# -- the verdict: each rule catches what it names -------------------------------------------------------------------
def _written(folder, kit):
    (folder / "mine.txt").write_text("mine")
    return []


REFUSAL = CommandCase("x", "settings", "predict", _written, ("step must be",), absent=("out",))
MESSAGE = "error: step must be a whole number, got 'abc'\n(HYDRA_FULL_ERROR=1 shows the traceback)\n"


def _judged(tmp_path, outcome: Outcome, case: CommandCase = REFUSAL, change=None) -> tuple[bool, str]:
    folder = tmp_path / "case"
    folder.mkdir(parents=True)
    case.setup(folder, None)
    before = file_hashes(folder)
    if change:
        change(folder)
    return judge(case, folder, before, outcome)


def test_a_refusal_as_expected_is_handled(tmp_path):
    assert _judged(tmp_path, Outcome(2, MESSAGE)) == (True, "error: step must be a whole number, got 'abc'")


@pytest.mark.parametrize(
    ("outcome", "change", "problem"),
    [
        (Outcome(2, MESSAGE), lambda f: (f / "mine.txt").write_text("gone"), "changed or deleted the user's mine.txt"),
        (Outcome(2, MESSAGE), lambda f: (f / "mine.txt").unlink(), "changed or deleted the user's mine.txt"),
        (Outcome(2, MESSAGE), lambda f: (f / "out").mkdir(), "wrote out"),
        (Outcome(1, MESSAGE), None, "exit 1, expected 2"),
        (Outcome(2, "error: batch_size must be ...\n"), None, "does not say 'step must be'"),
        (Outcome(2, "step must be a whole number\n"), None, "no one-paragraph 'error: ...' message"),
        (Outcome(2, "error: step must be\n\nmore\n(HYDRA_FULL_ERROR=1"), None, "no one-paragraph"),
        (Outcome(2, MESSAGE + "Traceback (most recent call last):\n  ...\nKeyError: 'x'\n"), None, "traceback: KeyErr"),
    ],
    ids=["changed", "deleted", "output-written", "exit", "other-text", "no-error-line", "two-paragraphs", "traceback"],
)
def test_each_rule_of_the_verdict_catches_its_failure(tmp_path, outcome, change, problem):
    handled, detail = _judged(tmp_path, outcome, change=change)
    assert not handled and problem in detail, detail


def test_a_wrong_output_fails_its_check(tmp_path):
    def check(folder, text):
        return None if (folder / "out.csv").is_file() else "no out.csv"

    case = CommandCase("y", "layout", "measure", _written, exit_code=0, check=check)
    assert _judged(tmp_path, Outcome(0, "measured 1 masks"), case)[1].startswith("no out.csv")
    assert _judged(tmp_path / "2", Outcome(0, ""), case, lambda f: (f / "out.csv").write_text("a"))[0]


# -- the figures of benchmarks/bad_inputs.py ------------------------------------------------------------------------
def test_the_command_figure_and_the_total():
    bench = bad_inputs_benchmark()
    verdicts = {case.name: (True, "error: ...") for case in CASES}
    result = bench.command_tally(CASES, verdicts)
    n = len(CASES)
    assert (result["handled"], result["total"], result["failed"], result["not_run"]) == (n, n, [], [])
    files = {"handled": 37, "total": 38}
    assert (
        bench.total_line(files, result)
        == f"{n + 37} of {n + 38} bad inputs handled: files 37 of 38, commands {n} of {n}"
    )
    assert bench.total_line(None, result).startswith(f"{n} of {n} bad inputs handled: files not run")
    first, second = CASES[0].name, CASES[-1].name
    verdicts[first] = (False, "exit 0, expected 2")
    del verdicts[second]  # a case without a verdict is not run, never handled
    worse = bench.command_tally(CASES, verdicts)
    assert (worse["handled"], worse["failed"], worse["not_run"]) == (n - 2, [first], [second])
    lines = bench.command_lines(worse)
    assert lines[:3] == [
        f"commands: {n - 2} of {n} handled",
        f"commands not handled: {first}",
        f"commands not run: {second}",
    ]
    kinds = {case.kind for case in CASES}
    per_kind = worse["per_kind"]
    assert sum(k["total"] for k in per_kind.values()) == n and set(per_kind) == kinds
    assert per_kind[CASES[0].kind]["handled"] == sum(c.kind == CASES[0].kind for c in CASES) - 1 - (
        CASES[-1].kind == CASES[0].kind
    )
