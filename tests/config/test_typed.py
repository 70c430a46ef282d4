"""`rootseg.config.typed`: every command's values typed by one set of rules; each refusal names the key."""

from __future__ import annotations

import math

import pytest
from omegaconf import OmegaConf

from rootseg.config import typed

BOOL_WORDS = {
    **dict.fromkeys(["true", "True", "YES", "yes", "on", "On", "1", True, 1], True),
    **dict.fromkeys(["false", "FALSE", "no", "No", "off", "0", False, 0], False),
}


@pytest.mark.parametrize("value", list(BOOL_WORDS), ids=[repr(v) for v in BOOL_WORDS])
def test_booleans_take_the_usual_words(value):
    assert typed.boolean("rve", value) is BOOL_WORDS[value]


@pytest.mark.parametrize("value", ["maybe", "2", "", "nope", 2, -1, 0.5, None, "y"])
def test_anything_else_is_refused_with_the_rule(value):
    with pytest.raises(ValueError, match=r"^rve must be true or false \(also yes/no, on/off, 1/0\), got"):
        typed.boolean("rve", value)


@pytest.mark.parametrize(
    ("value", "expected"), [(3, 3), ("3", 3), (2.0, 2), ("-1", -1), (" 7 ", 7)], ids=lambda v: repr(v)
)
def test_whole_numbers(value, expected):
    got = typed.Number(whole=True, low=-1).convert("trainer.max_epochs", value)
    assert got == expected and isinstance(got, int)


@pytest.mark.parametrize("value", ["abc", "1.5", 1.5, True, "inf", float("nan"), -2, "", None, [1]])
def test_not_whole_numbers_name_the_key(value):
    with pytest.raises(ValueError, match=r"^trainer\.max_epochs must be a whole number >= -1, got "):
        typed.Number(whole=True, low=-1).convert("trainer.max_epochs", value)


def test_bounds_open_and_closed_and_finiteness():
    probability = typed.Number(low=0, high=1, low_open=True, high_open=True)
    assert probability.convert("threshold", "0.25") == 0.25
    for bad in (0, 1, -0.1, 1.5, "nan", "inf", "-inf", "x"):
        with pytest.raises(ValueError, match=r"^threshold must be a finite number > 0 and < 1, got"):
            probability.convert("threshold", bad)
    closed = typed.Number(low=0, high=1)
    assert closed.convert("f", 0) == 0 and closed.convert("f", 1) == 1
    assert math.isinf(typed.Number(allow_inf=True).convert("x", "inf"))
    assert typed.Number(optional=True).convert("dpi", None) is None
    with pytest.raises(ValueError, match="or null"):
        typed.Number(optional=True).convert("dpi", "abc")


def test_choices_lists_and_the_config_is_converted_in_place():
    cfg = OmegaConf.create({"rve": "no", "trainer": {"max_epochs": "3"}, "side": True, "ckpt": "???", "size": [4, "5"]})
    OmegaConf.set_struct(cfg, True)
    rules = {
        "rve": typed.Bool(),
        "trainer.max_epochs": typed.Number(whole=True),
        "side": typed.Choice(("pred", "true")),  # Hydra reads side=true as a boolean
        "ckpt": typed.Bool(),  # still ???: left for its own "is required" error
        "absent": typed.Bool(),
        "size": typed.Numbers(typed.Number(whole=True, low=1), length=2),
    }
    typed.check(cfg, rules)
    assert OmegaConf.to_container(cfg) == {
        "rve": False,
        "trainer": {"max_epochs": 3},
        "side": "true",
        "ckpt": "???",
        "size": [4, 5],
    }
    with pytest.raises(ValueError, match=r"^period must be one of date, week, month, got 'year'$"):
        typed.Choice(("date", "week", "month")).convert("period", "year")
    with pytest.raises(ValueError, match=r"^size\[1\] must be a whole number >= 1, got 0$"):
        typed.Numbers(typed.Number(whole=True, low=1), length=2).convert("size", [3, 0])
    with pytest.raises(ValueError, match=r"^size must be a list of 2 numbers"):
        typed.Numbers(typed.Number(whole=True, low=1), length=2).convert("size", [3])
    assert typed.Texts().convert("runs", "a") == ["a"] and typed.Texts().convert("runs", [1, "b"]) == ["1", "b"]
    with pytest.raises(ValueError, match=r"^runs must be one value or a list"):
        typed.Texts().convert("runs", [])
