"""dqn-check from the command line: a report and exit 0 for a sound env, one line a problem and exit 2 otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CONFIGS, assert_user_error, cli, help_without_heavy_imports


@pytest.mark.contract
def test_a_sound_env_is_described_and_passes(tmp_path: Path) -> None:
    result = cli("dqn-check", str(CONFIGS / "cartpole.py"), "--steps", "300", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "dqn-check: CartPole-v1"
    assert "  observations: 4 float32 values -> an MLP" in result.stdout
    assert "  replay: 65 bytes a transition" in result.stdout  # configs/cartpole.py: 1-step returns
    assert "  random play: 300 env steps" in result.stdout and "no problems found" in result.stdout
    assert not list(tmp_path.iterdir()), "dqn-check wrote files"


@pytest.mark.contract
@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("Pendulum-v1", "Pendulum-v1 acts in a Box space; dqnkit's DQN family needs Discrete actions"),
        ("Taxi-v3", "Taxi-v3 observes a Discrete space"),
        ("CartPol-v1", "unknown environment id 'CartPol-v1'"),
    ],
)
def test_an_env_dqnkit_cannot_train_is_one_problem_line(target: str, fragment: str) -> None:
    result = cli("dqn-check", target, "--steps", "50")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and fragment in result.stderr and "Traceback" not in result.stderr


@pytest.mark.contract
def test_a_missing_config_and_bad_options_are_one_line(tmp_path: Path) -> None:
    assert_user_error(cli("dqn-check", str(tmp_path / "nope.py")), "config file not found")
    assert_user_error(cli("dqn-check", "CartPole-v1", "--steps", "0"), "--steps: expected a positive integer")


@pytest.mark.contract
def test_help_imports_neither_ding_nor_torch() -> None:
    text = help_without_heavy_imports("check")
    for flag in ("ENV_OR_CONFIG", "--steps", "--seed"):
        assert flag in text, flag
