"""dqn-check's findings on envs written here, each with one flaw, and the replay size it states against a real
buffer."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
import pytest

from dqnkit.envcheck import check_env, transition_bytes
from dqnkit.envs import EnvRef

ENVS = '''
import gymnasium
import numpy as np


class Walk(gymnasium.Env):
    """A 1-D walk: obs (position, time left) in [-1, 1] x [0, 1], two actions; `flaw` names what goes wrong."""

    def __init__(self, flaw=None):
        self.flaw = flaw
        self.observation_space = gymnasium.spaces.Box(np.array([-1, 0], np.float32), np.array([1, 1], np.float32))
        self.action_space = gymnasium.spaces.Discrete(2)
        self.pos, self.t, self.resets = 0.0, 0, 0

    def _obs(self):
        return np.array([self.pos, 1 - self.t / 20], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.resets += 1
        self.pos = 0.01 * self.resets if self.flaw == "reset" else float(self.np_random.uniform(-0.1, 0.1))
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        if self.flaw == "raise" and self.t == 4:
            raise ValueError("illegal move 1 at this position")
        self.pos += 0.1 if action else -0.1
        if self.flaw == "outside" and self.t == 3:
            self.pos = 7.5
        done = abs(self.pos) >= 1 or self.t >= 20
        self.pos = float(np.clip(self.pos, -1, 1)) if self.flaw != "outside" else self.pos
        return self._obs(), float(action), done and self.t < 20, self.t >= 20, {}
'''


@pytest.fixture(scope="module")
def walk_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("envs")
    (root / "walkenvs.py").write_text(textwrap.dedent(ENVS))
    return str(root)


def _check(root: str, flaw: str | None) -> Any:
    return check_env(EnvRef("walkenvs:Walk", {"flaw": flaw}, root), steps=200, seed=0, nstep=3)


def test_a_sound_env_gets_what_dqnkit_builds_and_no_problem(walk_root: str) -> None:
    report = _check(walk_root, None)
    assert report.problems == []
    assert report.lines[0] == "observations: 2 float32 values -> an MLP (policy.model.encoder_hidden_size_list)"
    assert report.lines[1] == f"replay: {transition_bytes(2, 3)} bytes a transition"
    assert report.lines[2] == "actions: 2 (Discrete) -> 2 Q-values"
    assert report.lines[-1].startswith("random play: 200 env steps, ")


@pytest.mark.parametrize(
    ("flaw", "problem"),
    [
        ("raise", "env step 3: walkenvs:Walk raised ValueError: illegal move 1 at this position"),
        ("outside", "env step 2: observation entry 0 is 7.5"),
        ("reset", "reset(seed=0) twice gave different first observations"),
    ],
)
def test_each_flaw_is_one_line(walk_root: str, flaw: str, problem: str) -> None:
    problems = _check(walk_root, flaw).problems
    assert any(problem in line for line in problems), problems
    assert all("\\n" not in line for line in problems)


def test_the_stated_replay_size_is_what_the_buffer_holds(twin_buffers: tuple[Any, Any]) -> None:
    """The twin buffers hold real CartPole transitions after dqnkit's 3-step enhancer."""
    _, array_buffer = twin_buffers
    per_transition = sum(values[0].numel() * values.element_size() for values in array_buffer.fields.values())
    assert per_transition == transition_bytes(4, 3)
    assert np.prod(array_buffer.fields["obs"].shape[1:]) == 4
