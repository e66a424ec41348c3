"""dqn-check's findings on envs written here, each with one flaw, and the replay size it states against a real
buffer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import WALK_ENVS
from dqnkit.envcheck import check_env, transition_bytes
from dqnkit.envs import EnvRef


@pytest.fixture(scope="module")
def walk_root() -> str:
    return str(WALK_ENVS.parent)


def _check(root: str, flaw: str | None) -> Any:
    return check_env(EnvRef("walkenvs:Walk", {"flaw": flaw}, root), steps=200, seed=0, nstep=3)


def test_a_sound_env_gets_what_dqnkit_builds_and_no_problem(walk_root: str) -> None:
    report = _check(walk_root, None)
    assert report.problems == []
    assert report.lines[0] == "observations: 2 float32 values -> an MLP (policy.model.encoder_hidden_size_list)"
    assert report.lines[1] == f"replay: {transition_bytes(2, 3)} bytes a transition"
    assert report.lines[2] == "actions: 2 (Discrete) -> 2 Q-values"
    assert report.lines[-2] == "action masks: none found (every action legal in every state)"
    assert report.lines[-1].startswith("random play: 200 env steps, ")


def test_an_env_that_raises_on_illegal_actions_plays_its_legal_ones(walk_root: str) -> None:
    report = _check(walk_root, "masked")
    assert report.problems == [] and "action masks: info['action_mask']" in report.lines
    assert "dqn-train does not apply action masks yet: its random actions may be illegal ones" in report.notes


@pytest.mark.parametrize(
    ("flaw", "problem"),
    [
        ("raise", "env step 3: walkenvs:Walk raised ValueError: illegal move 1 at this position"),
        ("outside", "env step 2: observation entry 0 is 7.5"),
        ("reset", "reset(seed=0) twice gave different first observations"),
        ("mask_short", "reset: info['action_mask'] has shape (1,), not (2,) for 2 actions"),
        ("mask_float", "reset: info['action_mask'] holds float32 values; a mask is bool or 0/1 integers"),
        ("mask_none", "reset: info['action_mask'] marks no action legal"),
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
