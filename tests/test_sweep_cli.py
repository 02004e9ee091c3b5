"""`cifarlab sweep`'s options and files become the body of POST /api/sweeps; what cannot be
read is refused naming the option, before anything is sent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from app.cli.specs import PruneRule, build_sweep, load_sweep_file, parse_random, parse_seeds
from app.core.sweeps import expand, parse_sweep


def options(**changes: Any) -> dict[str, Any]:
    return {
        "preset": None, "model": None, "assignments": [], "grid": [], "random": [],
        "trials": None, "seeds": None, "max_parallel": None, "prune": None, "name": None,
        "tags": [], **changes,
    }  # fmt: skip


def test_options_build_a_sweep_the_core_expands() -> None:
    body = build_sweep(**options(
        preset="quick-custom-cnn", assignments=["epochs=1"], tags=["cli"],
        grid=["learning_rate=1e-3,3e-3", "optimizer=adam,sgd"],
        random=["dense_units=uniform:16:64"], trials=2, seeds="0,5", max_parallel=2,
        prune=PruneRule.asha,
    ))  # fmt: skip
    assert body["grid"] == {"learning_rate": [0.001, 0.003], "optimizer": ["adam", "sgd"]}
    assert body["random"] == {"dense_units": {"distribution": "uniform", "low": 16, "high": 64}}
    assert (body["seeds"], body["max_parallel"], body["pruning"]) == ([0, 5], 2, {"rule": "asha"})
    assert body["hyperparameters"]["epochs"] == 1 and body["model"] == "custom_cnn"
    assert "cli" in body["tags"]
    trials = expand(parse_sweep(body))
    assert len(trials) == 2 * 2 * 2 * 2
    assert {t.point["seed"] for t in trials} == {0, 5}


def test_a_bare_sweep_leaves_the_server_its_defaults() -> None:
    body = build_sweep(**options(model="custom_cnn", grid=["epochs=1,2"]))
    assert set(body) == {"model", "tags", "hyperparameters", "grid", "random"}
    assert parse_sweep(body).name == "custom_cnn"  # named by the server, as a launch is


@pytest.mark.parametrize(
    ("text", "seeds"), [("3", 3), ("0,1,2", [0, 1, 2]), ("7,", [7]), (" 4 , 2", [4, 2])]
)
def test_seeds_are_a_count_or_a_list(text: str, seeds: int | list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: parse_seeds("a,b"), "--seeds 'a,b'"),
        (lambda: parse_seeds("-1"), "a count"),
        (lambda: parse_random(["learning_rate=log_uniform:1e-4"]), "--random"),
        (lambda: parse_random(["learning_rate=normal:0:1"]), "name=choice:A,B"),
        (lambda: build_sweep(**options(grid=["learning_rate"])), "--grid 'learning_rate'"),
        (lambda: build_sweep(**options(preset="nope")), "no preset 'nope'"),
    ],
)
def test_unreadable_options_are_refused_naming_the_option(call: Any, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        call()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"grid": ["learning_rate=1e-3", "learning_rate=2e-3"]},
         "--grid learning_rate: given twice (1e-3 and 2e-3); keep one"),
        ({"random": ["learning_rate=uniform:1e-4:1e-3", "learning_rate=uniform:1e-2:1e-1"]},
         "--random learning_rate: given twice (uniform:1e-4:1e-3 and uniform:1e-2:1e-1); "
         "keep one"),
        ({"assignments": ["epochs=1", "epochs=2"], "grid": ["learning_rate=1e-3,2e-3"]},
         "--set epochs: given twice (1 and 2); keep one"),
    ],
)  # fmt: skip
def test_an_axis_or_setting_given_twice_is_refused_not_cut_to_its_last(
    changes: dict[str, Any], message: str
) -> None:
    """The grid swept 2e-3 alone, the random axis drew from the second range only."""
    with pytest.raises(ValueError) as refused:
        build_sweep(**options(model="custom_cnn", **changes))
    assert str(refused.value) == message


def test_a_yaml_file_reads_exponents_as_numbers_like_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "sweep.yaml"
    yaml_file.write_text(
        "name: lr\nmodel: custom_cnn\ngrid:\n  learning_rate: [1e-3, 3.0e-3, 1E-2]\n"
        "random:\n  dense_units: {distribution: choice, values: [16, 32]}\ntrials: 2\nseeds: 3\n"
    )
    body = load_sweep_file(yaml_file)
    assert body["grid"] == {"learning_rate": [0.001, 0.003, 0.01]}
    json_file = tmp_path / "sweep.json"
    json_file.write_text('{"name": "lr", "model": "custom_cnn", "grid": {"epochs": [1, 2]}}')
    assert load_sweep_file(json_file)["grid"] == {"epochs": [1, 2]}
    (tmp_path / "bad.yaml").write_text("grid: [unclosed")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_sweep_file(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="give a .yaml"):
        load_sweep_file(tmp_path / "sweep.toml")
    for name, text in (("empty.yaml", ""), ("null.json", "null"), ("list.yaml", "- a\n")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=rf"{name}: expected a sweep \(name, model"):
            load_sweep_file(tmp_path / name)
