"""`key=value` on a command line (`--set`, and through it `--grid` and `--random`): each key
once. A repeated key kept only its last value, without a word."""

from __future__ import annotations

import pytest

from app.core.assignments import parse_assignments, split_assignments


def test_each_key_is_read_once_with_its_value_as_json_or_text() -> None:
    assert parse_assignments(["epochs=2", " optimizer =sgd", "train_size=null"]) == {
        "epochs": 2, "optimizer": "sgd", "train_size": None,
    }  # fmt: skip
    assert split_assignments("--grid", ["learning_rate=1e-3,3e-3"], "lr=1") == {
        "learning_rate": "1e-3,3e-3"
    }


def test_a_key_given_twice_is_refused_naming_the_option_and_both_values() -> None:
    with pytest.raises(ValueError) as refused:
        parse_assignments(["epochs=1", "batch_size=64", "epochs=2"])
    assert str(refused.value) == "--set epochs: given twice (1 and 2); keep one"
    with pytest.raises(ValueError, match=r"^--grid lr: given twice \(1e-3 and 2e-3\); keep one$"):
        split_assignments("--grid", ["lr=1e-3", " lr =2e-3"], "lr=1e-3")  # spaces: one key
