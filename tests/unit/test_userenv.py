"""A user's env named module:ClassName or module:EnvName-v0, imported from a folder of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from dqnkit.envs import EnvRef, env_facts
from dqnkit.errors import UserError
from dqnkit.userenv import import_root

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"

REGISTERING_MODULE = """
import gymnasium
gymnasium.register(id="LongCorridor-v0", entry_point="corridor:Corridor", kwargs={"length": 9})
"""


def test_the_folder_holding_the_module_is_recorded_and_installed_packages_are_not() -> None:
    assert import_root("corridor:Corridor", [Path("/nonexistent"), EXAMPLES]) == str(EXAMPLES)
    assert import_root("gymnasium.envs.classic_control:CartPoleEnv", [EXAMPLES]) is None


def test_a_class_and_a_registering_module_both_build(tmp_path: Path) -> None:
    (tmp_path / "corridor.py").write_text((EXAMPLES / "corridor.py").read_text())
    (tmp_path / "my_envs.py").write_text(REGISTERING_MODULE)
    root = str(tmp_path)
    by_class = env_facts(EnvRef("corridor:Corridor", {"length": 3}, root))
    assert (by_class["obs_shape"], by_class["action_count"]) == ([2], 2)
    registered = env_facts(EnvRef("my_envs:LongCorridor-v0", {}, root))  # Gymnasium's module:EnvName-v0
    assert (registered["obs_shape"], registered["action_count"]) == ([2], 2)


def test_kwargs_the_class_does_not_take_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "corridor.py").write_text((EXAMPLES / "corridor.py").read_text())
    with pytest.raises(UserError, match=r"does not take env.kwargs \['width'\]"):
        env_facts(EnvRef("corridor:Corridor", {"width": 2}, str(tmp_path)))
