"""The one action rule, against hand-worked cases."""

from __future__ import annotations

import numpy as np

from dqnkit.actions import explore, greedy


def test_greedy_takes_each_rows_best_and_the_lowest_index_on_a_tie() -> None:
    q = np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 0.0], [-1.0, -2.0, -0.5]], dtype=np.float32)
    assert greedy(q).tolist() == [1, 0, 2]


def test_explore_draws_nothing_when_greedy() -> None:
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert [explore(2, 0.0, rng, 4) for _ in range(10)] == [2] * 10
    assert rng.bit_generator.state == state


def test_explore_replaces_an_action_with_probability_epsilon_by_a_uniform_draw() -> None:
    rng, expected_rng = np.random.default_rng(5), np.random.default_rng(5)
    played = [explore(0, 0.3, rng, 3) for _ in range(2000)]
    expected = [int(expected_rng.integers(3)) if expected_rng.random() < 0.3 else 0 for _ in range(2000)]
    assert played == expected  # the draw order: one uniform, then the action only when it explores
    assert 0.17 < np.mean(np.array(played) != 0) < 0.23  # 0.3 x 2/3 of random actions differ from 0
