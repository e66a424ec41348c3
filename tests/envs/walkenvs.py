"""Envs the tests train and check: a 1-D walk, with one flaw where a test needs it."""

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

    def _info(self):
        """With a mask flaw: the legal moves in info (none past the walls at +-0.3), malformed as the flaw says."""
        if not (self.flaw or "").startswith("mask"):
            return {}
        mask = np.array([self.pos > -0.3, self.pos < 0.3])
        malformed = {"mask_short": mask[:1], "mask_float": mask.astype(np.float32), "mask_none": mask & False}
        return {"action_mask": malformed.get(self.flaw, mask)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.resets += 1
        self.pos = 0.01 * self.resets if self.flaw == "reset" else float(self.np_random.uniform(-0.1, 0.1))
        self.t = 0
        return self._obs(), self._info()

    def step(self, action):
        self.t += 1
        if self.flaw == "raise" and self.t == 4:
            raise ValueError("illegal move 1 at this position")
        if self.flaw == "masked" and not self._info()["action_mask"][action]:
            raise ValueError(f"illegal move {action} at {self.pos:.2f}")
        self.pos += 0.1 if action else -0.1
        if self.flaw == "outside" and self.t == 3:
            self.pos = 7.5
        done = abs(self.pos) >= 1 or self.t >= 20
        self.pos = float(np.clip(self.pos, -1, 1)) if self.flaw != "outside" else self.pos
        return self._obs(), float(action), done and self.t < 20, self.t >= 20, self._info()
