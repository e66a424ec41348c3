"""The one rule by which dqnkit picks an action from Q-values, wherever it plays an env itself (dqn-eval, the
export's rollouts, the background evaluator): the greedy action, or with probability epsilon a uniformly random
one drawn from the caller's generator. Training's collector acts through DI-engine's policy."""

from __future__ import annotations

import numpy as np


def greedy(q_values: np.ndarray) -> np.ndarray:
    """The best action of each row of Q-values [B, n]; a tie goes to the lowest index, as in torch and ONNX."""
    return np.asarray(q_values).argmax(axis=1)


def explore(action: int, epsilon: float, rng: np.random.Generator, n_actions: int) -> int:
    """`action`, or with probability `epsilon` a uniformly random one. Nothing is drawn when epsilon is 0, so that a
    greedy player's generator stays where it was."""
    if epsilon > 0 and rng.random() < epsilon:
        return int(rng.integers(n_actions))
    return int(action)
