"""The bad-input corpus (benchmarks/bad_input_corpus.py) through check, train (debug=fdr), eval and predict: every bad
file is refused with its name, every odd-but-valid file is read right. The 108 MP image is predicted at full
size with a stand-in for the network (`brightness_net`: root where a pixel is bright, no convolutions) and its
mask and CSV row are compared with the stand-in's mask computed by NumPy (~30 s); eval scores it the same way.
The last test checks the figure that benchmarks/bad_inputs.py prints ('N of M bad inputs handled') on the
verdicts of the four commands."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from bad_input_corpus import (
    Case,
    _save,
    brightness_mask,
    check_stand_in_prediction,
    check_stand_in_scores,
    make_bad_corpus,
    run_check,
    run_eval,
    run_predict,
    run_train,
    scene,
)
from conftest import bad_inputs_benchmark

from rootseg.io.masks import read_mask

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
    # the 108 MP image, scored with the stand-in: per_image.csv's counts are the NumPy mask's against the truth
    assert VERDICTS["eval"]["large_12000x9000"] == (True, "f1=1.0 tp=324000 fp=0 fn=0")


def test_predict_skips_bad_files_by_name_and_writes_the_rest(corpus, work, tiny_checkpoint):
    VERDICTS["predict"] = run_predict(corpus, work, tiny_checkpoint)
    _assert_all(VERDICTS["predict"], corpus, "predict")
    large = [c for c in corpus if c.stand_in]
    assert [c.name for c in large] == ["large_12000x9000"] and "predict" not in large[0].skip
    # its verdict is check_stand_in_prediction's: the full-size mask equals the stand-in's NumPy mask
    assert "12000x9000 (WxH), 324000 root px" in VERDICTS["predict"]["large_12000x9000"][1]


def _stand_in_case(tmp_path: Path) -> tuple[Case, np.ndarray]:
    image, truth = scene((150, 170), seed=7)
    ip = _save(image, tmp_path / "images" / "a.png")
    mp = _save(truth * 255, tmp_path / "masks" / "a.png")
    case = Case("a", tmp_path, ip, mp, [ip, mp], display_shape=(150, 170), stand_in=True, root_length=3 * 150.0)
    return case, brightness_mask(image)


def test_stand_in_checks_catch_a_shifted_mask_and_wrong_csv_rows(tmp_path):
    """The checks behind the 108 MP verdicts fail on outputs that are not the stand-in's."""
    case, expected = _stand_in_case(tmp_path)
    assert (expected == (read_mask(case.mask) > 0)).all()
    length = case.root_length
    row = {"height": "150", "width": "170", "root_pixels": str(int(expected.sum())), "root_length_px": str(length)}
    good = _save(expected.astype(np.uint8) * 255, tmp_path / "out" / "a.png")
    assert check_stand_in_prediction(case, good, row)[0]
    shifted = _save(np.roll(expected, 1, axis=1).astype(np.uint8) * 255, tmp_path / "out" / "b.png")
    ok, detail = check_stand_in_prediction(case, shifted, row)
    assert not ok and "mask pixels differ from the stand-in's" in detail
    for key, value, text in (
        ("root_pixels", "1", "root pixels 1 !="),
        ("root_length_px", str(length * 1.1), "root length"),
        ("width", "171", "width 171 != 170"),
    ):
        ok, detail = check_stand_in_prediction(case, good, {**row, key: value})
        assert not ok and text in detail, detail
    assert not check_stand_in_prediction(case, good, None)[0]
    counts = {"tp": int(expected.sum()), "fp": 0, "fn": 0, "tn": int((~expected).sum())}
    scores = {**{k: str(v) for k, v in counts.items()}, "f1": "1.0", "root_pixels_pred": str(counts["tp"])}
    scores["length_pred_px"] = str(length)
    assert check_stand_in_scores(case, scores) == (True, f"f1=1.0 tp={counts['tp']} fp=0 fn=0")
    ok, detail = check_stand_in_scores(case, {**scores, "fp": "3"})
    assert not ok and "fp 3 != 0" in detail
    assert check_stand_in_scores(case, None) == (False, "no row in per_image.csv")


def test_the_handled_figure_counts_only_cases_every_command_ran(corpus, tmp_path, request):
    """'N of M bad inputs handled': M is the corpus, N the cases every command ran and handled; a case a
    command skips is named instead of counted; a failure lowers N and is named."""
    bench = bad_inputs_benchmark()
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
    # every command runs every case (the 108 MP image with the stand-in network in eval and predict)
    assert skipped == {}
    assert (result["handled"], result["total"], result["skipped"], result["failed"]) == (len(corpus), 38, {}, [])
    lines = bench.summary_lines(result)
    assert lines[0] == "38 of 38 bad inputs handled"
    assert lines[-1] == "per command: " + ", ".join(f"{cmd} 38 of 38" for cmd in bench.COMMANDS)
    # a command that skips a case (no verdict for it): the case is named, not counted
    nothing_skipped = [dataclasses.replace(c, skip={}) for c in corpus]
    without_large = {k: v for k, v in VERDICTS["eval"].items() if k != "large_12000x9000"}
    assert bench.summary_lines(bench.tally(corpus, {**VERDICTS, "eval": without_large}))[0] == (
        "37 of 38 bad inputs handled; not counted, skipped by some command: large_12000x9000 (eval)"
    )
    complete = VERDICTS
    # a verdict missing from a command counts as skipped by it, never as handled
    victim = everywhere[1]
    missing = {**VERDICTS, "predict": {k: v for k, v in VERDICTS["predict"].items() if k != victim}}
    partial = bench.tally(nothing_skipped, {**missing, "eval": complete["eval"]})
    assert partial["handled"] == 37 and partial["skipped"] == {victim: ["predict"]}
    # one case failing one command: one fewer handled, and named
    victim = everywhere[0]
    broken = {**VERDICTS, "eval": {**VERDICTS["eval"], victim: (False, "no row in per_image.csv")}}
    worse = bench.tally(corpus, broken)
    assert worse["handled"] == len(everywhere) - 1 and worse["failed"] == [victim]
    assert bench.summary_lines(worse)[1] == f"not handled: {victim}"
