"""Loading configs and applying --set overrides, in process."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CONFIGS
from dqnkit.config import apply_overrides, flat_keys, load_config_file, parse_override
from dqnkit.errors import UserError


@pytest.mark.parametrize("name", ["cartpole.py", "cartpole_plain.yaml", "lunarlander.py", "lunarlander_v3.py"])
def test_every_shipped_config_loads_as_plain_dicts(name: str) -> None:
    main, create = load_config_file(CONFIGS / name)
    assert type(main) is dict and type(create) is dict
    assert main["env"]["env_id"]
    assert create["policy"]["type"] == "dqn"


def test_missing_config() -> None:
    with pytest.raises(UserError, match=r"config file not found: nope.py"):
        load_config_file("nope.py")


def test_config_that_fails_to_import(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("main_config = dict(\n")
    with pytest.raises(UserError, match="syntax error"):
        load_config_file(tmp_path / "broken.py")
    (tmp_path / "raises.py").write_text("import no_such_module_xyz\n")
    with pytest.raises(UserError, match=r"failed to import.*no_such_module_xyz"):
        load_config_file(tmp_path / "raises.py")
    (tmp_path / "half.py").write_text("main_config = {}\n")
    with pytest.raises(UserError, match="does not define create_config"):
        load_config_file(tmp_path / "half.py")


def test_config_that_fails_to_parse(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("main_config: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML at line"):
        load_config_file(tmp_path / "bad.yaml")
    (tmp_path / "config.toml").write_text("")
    with pytest.raises(UserError, match=r"must be a \.py or \.yaml file, not \.toml"):
        load_config_file(tmp_path / "config.toml")


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("policy.learn.learning_rate=5e-4", "policy.learn.learning_rate", 5e-4),  # YAML 1.1 reads 5e-4 as a string
        ("policy.learn.batch_size=64", "policy.learn.batch_size", 64),
        ("policy.model.encoder_hidden_size_list=[256, 64]", "policy.model.encoder_hidden_size_list", [256, 64]),
        ("dqnkit.max_env_steps=null", "dqnkit.max_env_steps", None),
        ("env.env_id=CartPole-v1", "env.env_id", "CartPole-v1"),
        ("env.env_id=", "env.env_id", ""),
    ],
)
def test_set_values_are_read_as_yaml_scalars(text: str, key: str, value: object) -> None:
    assert parse_override(text) == (key, value)


@pytest.mark.parametrize("text", ["policy.learn.batch_size", "=3", "policy..batch_size=3", "a.b=[unclosed"])
def test_malformed_set(text: str) -> None:
    with pytest.raises(UserError, match="--set"):
        parse_override(text)


def _cartpole() -> tuple[dict, dict]:
    main, _ = load_config_file(CONFIGS / "cartpole.py")
    compiled = {**main, "dqnkit": {"max_env_steps": None, "torch_threads": 1}}
    return main, compiled


def test_unknown_set_key_suggests_the_closest() -> None:
    main, compiled = _cartpole()
    with pytest.raises(UserError, match=r"policy.learn.learning_rte.*did you mean policy.learn.learning_rate"):
        apply_overrides(main, [("policy.learn.learning_rte", 0.1)], compiled)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("policy.learn.batch_size", "big", "integer"),
        ("policy.learn.batch_size", 1.5, "integer"),
        ("policy.learn.batch_size", None, "expected an integer"),  # null clears only keys where it means something
        ("policy.learn.learning_rate", "fast", "a number"),
        ("policy.cuda", 1, "true or false"),
        ("policy.model.encoder_hidden_size_list", 64, "a list"),
        ("policy.learn", 3, "is a section"),
    ],
)
def test_set_value_of_the_wrong_type(key: str, value: object, expected: str) -> None:
    main, compiled = _cartpole()
    with pytest.raises(UserError, match=expected):
        apply_overrides(main, [(key, value)], compiled)


def test_overrides_land_in_the_raw_config_with_the_replaced_values_type() -> None:
    main, compiled = _cartpole()
    apply_overrides(main, [("policy.learn.learning_rate", 1), ("dqnkit.max_env_steps", 500)], compiled)
    assert main["policy"]["learn"]["learning_rate"] == 1.0 and type(main["policy"]["learn"]["learning_rate"]) is float
    assert main["dqnkit"]["max_env_steps"] == 500
    apply_overrides(main, [("dqnkit.max_env_steps", None)], compiled)
    assert main["dqnkit"]["max_env_steps"] is None
    assert "policy.learn.batch_size" in flat_keys(compiled)
