"""The bad-input corpus (tests/bad_inputs.py) through check, train (debug=fdr), eval and predict: every bad
file is refused with its name, every odd-but-valid file is read right. Only the 108 MP image skips eval and
predict (minutes of CPU sliding windows); check and train read it."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_inputs import Case, make_bad_corpus, run_check, run_eval, run_predict, run_train


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
    _assert_all(run_check(corpus, work), corpus, "check")


def test_train_refuses_bad_files_up_front_and_trains_on_the_rest(corpus, work):
    _assert_all(run_train(corpus, work), corpus, "train")


def test_eval_names_the_bad_file_and_scores_the_rest(corpus, work, tiny_checkpoint):
    _assert_all(run_eval(corpus, work, tiny_checkpoint), corpus, "eval")


def test_predict_skips_bad_files_by_name_and_writes_the_rest(corpus, work, tiny_checkpoint):
    _assert_all(run_predict(corpus, work, tiny_checkpoint), corpus, "predict")
