"""A corridor to walk out of: a small Gymnasium env to train with dqnkit, unregistered."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    """Start at the left end; step left or right; the exit is `length` cells to the right. Every step costs 0.1,
    the exit pays 1: the best return is 1 - 0.1 * (length - 1)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(self, length: int = 6, render_mode: str | None = None) -> None:
        self.length = length
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.position = self.steps = 0

    def _observation(self) -> np.ndarray:
        return np.array([self.position / self.length, self.steps / (4 * self.length)], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.position = self.steps = 0
        return self._observation(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.position = max(0, self.position + (1 if action == 1 else -1))
        self.steps += 1
        out = self.position >= self.length
        return self._observation(), 1.0 if out else -0.1, out, self.steps >= 4 * self.length, {}

    def render(self) -> np.ndarray:
        frame = np.zeros((32, 32 * (self.length + 1), 3), dtype=np.uint8)
        frame[:, 32 * self.length :] = (0, 160, 0)  # the exit
        frame[8:24, 32 * self.position + 8 : 32 * self.position + 24] = (255, 255, 255)
        return frame
