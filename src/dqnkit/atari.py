"""Atari games from pixels: the DeepMind preprocessing, defined here once, on ale-py's own C++ implementation.

Every consumer (the training collector, the evaluator, dqn-eval, the export's parity rollouts, and an ONNX model's
evaluation without torch) builds its games through `AtariGame`, so what a model saw in training is what it sees
everywhere. Imports numpy, Gymnasium and ale-py only.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, fields
from functools import cache
from typing import Any

import gymnasium
import numpy as np

from dqnkit.errors import UserError

# (random, human) scores used by DQN-era papers and rliable's atari_data, for the human-normalized score.
HUMAN_NORMALIZATION: dict[str, tuple[float, float]] = {
    "pong": (-20.7, 14.6),
    "breakout": (1.7, 30.5),
    "space_invaders": (148.0, 1668.7),
    "seaquest": (68.4, 42054.7),
    "qbert": (163.9, 13455.0),
    "beam_rider": (363.9, 16926.5),
    "enduro": (0.0, 860.5),
}


@dataclass(frozen=True)
class AtariSettings:
    """The preprocessing (config key `env.atari`). `end_on_life_loss` and `clip_rewards` apply to training only:
    evaluation plays full games for their real score."""

    noop_max: int = 30
    frame_skip: int = 4
    screen_size: int = 84
    frame_stack: int = 4
    sticky_actions: float = 0.0
    end_on_life_loss: bool = True
    clip_rewards: bool = True
    max_frames: int = 108_000

    @classmethod
    def from_config(cls, section: Any) -> AtariSettings:
        given = dict(section or {})
        known = [f.name for f in fields(cls)]
        for key in given:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean env.atari.{close[0]}?" if close else f" (known: {', '.join(known)})"
                raise UserError(f"unknown key env.atari.{key}{hint}")
        return cls(**{k: type(getattr(cls, k))(v) for k, v in given.items()})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def obs_shape(self) -> list[int]:
        return [self.frame_stack, self.screen_size, self.screen_size]

    def for_evaluation(self) -> AtariSettings:
        """The standard evaluation protocol: full games, unclipped scores (no-op starts and frame cap kept)."""
        return AtariSettings(**{**asdict(self), "end_on_life_loss": False, "clip_rewards": False})


def register_games() -> None:
    """ale-py's ids in Gymnasium's registry (ale-py registers them with Gymnasium only, and only when asked)."""
    import ale_py

    gymnasium.register_envs(ale_py)


@cache
def atari_game(env_id: str) -> str | None:
    """The ROM an env id plays (ale-py's snake_case name, e.g. "pong" for ALE/Pong-v5 or PongNoFrameskip-v4),
    None for an id that is not an Atari game."""
    register_games()
    spec = gymnasium.envs.registry.get(env_id)
    if spec is None or not str(spec.entry_point).startswith("ale_py"):
        return None
    game = spec.kwargs.get("game")
    return str(game) if game else None


def human_normalized(game: str, score: float) -> float | None:
    """(score - random) / (human - random), for games with published reference scores."""
    if game not in HUMAN_NORMALIZATION:
        return None
    random_score, human_score = HUMAN_NORMALIZATION[game]
    return (score - random_score) / (human_score - random_score)


ATARI_EPSILON = 0.05  # the standard evaluation protocol acts randomly 5% of the time
SCREEN = (210, 160)  # the Atari 2600's screen, height and width


def vector_games(game: str, settings: AtariSettings, count: int, training: bool, screen: bool = False) -> Any:
    """ale-py's AtariVectorEnv with the preprocessing: `count` games stepped together in C++. `screen`: the same
    games (same seeds, same actions, same emulation) seen as the full RGB screen, for watching."""
    from ale_py.vector_env import AtariVectorEnv

    height, width = SCREEN if screen else (settings.screen_size, settings.screen_size)
    return AtariVectorEnv(
        game,
        count,
        num_threads=1,
        img_height=height,
        img_width=width,
        grayscale=not screen,
        stack_num=1 if screen else settings.frame_stack,
        frameskip=settings.frame_skip,
        maxpool=True,
        noop_max=settings.noop_max,
        episodic_life=False,  # ale-py 0.12 restarts the whole game on a lost life here; AtariGame continues it
        life_loss_info=training and settings.end_on_life_loss,
        reward_clipping=training and settings.clip_rewards,
        use_fire_reset=True,
        repeat_action_probability=settings.sticky_actions,
        max_num_frames_per_episode=settings.max_frames,
    )


class AtariGame(gymnasium.Env):
    """One preprocessed game as a Gymnasium env: uint8 observations [frame_stack, screen, screen].

    In training a lost life ends the episode but not the game: the next reset continues from the current screen
    (DeepMind's EpisodicLifeEnv); a game over or the frame cap starts a new game with the reset's seed.

    render_mode "rgb_array": `render()` returns the game's real screen (a twin emulator fed the same seeds and
    actions), with `agent_view` the agent's newest 84x84 frame beside it."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}  # noqa: RUF012  # a plain attribute in Gymnasium

    def __init__(
        self,
        game: str,
        settings: AtariSettings,
        training: bool,
        render_mode: str | None = None,
        agent_view: bool = False,
    ) -> None:
        self.game, self.settings, self.training = game, settings, training
        self.render_mode, self.agent_view = render_mode, agent_view
        self.metadata = {**self.metadata, "render_fps": 60 // settings.frame_skip}
        self._games = vector_games(game, settings, 1, training)
        self._screen = vector_games(game, settings, 1, training, screen=True) if render_mode == "rgb_array" else None
        self._screen_rgb: np.ndarray | None = None
        self.observation_space = self._games.single_observation_space
        self.action_space = self._games.single_action_space
        self.action_count = int(self._games.single_action_space.n)
        self._obs: np.ndarray | None = None
        self._continues = False
        self.lives = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        if self._continues and self._obs is not None:
            self._continues = False
            return self._obs, {"lives": self.lives, "continued": True}
        seed = None if seed is None else int(seed) % 2**31
        obs, info = self._games.reset(seed=seed)
        if self._screen is not None:
            self._screen_rgb = self._screen.reset(seed=seed)[0][0, 0]
        return self._keep(obs, info), {"lives": self.lives, "frame": int(info["episode_frame_number"][0])}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if not 0 <= int(action) < self.action_count:  # ale-py's vector env waits forever on an unknown action
            raise ValueError(f"action {action} outside {self.game}'s {self.action_count} actions")
        actions = np.asarray([int(action)], dtype=np.int64)
        obs, reward, terminated, truncated, info = self._games.step(actions)
        if self._screen is not None:
            self._screen_rgb = self._screen.step(actions)[0][0, 0]
        obs = self._keep(obs, info)
        ended, cut = bool(terminated[0]), bool(truncated[0])
        # ale-py signals a lost life as a termination while the game goes on (lives left).
        self._continues = ended and not cut and self.lives > 0
        return obs, float(reward[0]), ended, cut, {"lives": self.lives, "frame": int(info["episode_frame_number"][0])}

    def _keep(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        self._obs = obs[0]
        self.lives = int(info["lives"][0])
        return self._obs

    def render(self) -> np.ndarray:
        """The real screen [210, 160, 3] (with `agent_view`: and the agent's newest frame, doubled, beside it)."""
        if self._screen_rgb is None or self._obs is None:
            raise RuntimeError("AtariGame renders with render_mode='rgb_array', after a reset")
        if not self.agent_view:
            return self._screen_rgb
        view = np.repeat(np.repeat(self._obs[-1], 2, axis=0), 2, axis=1)  # the agent's frame, doubled
        height = max(self._screen_rgb.shape[0], view.shape[0])
        panel = np.zeros((height, view.shape[1], 3), dtype=np.uint8)
        panel[: view.shape[0]] = view[:, :, None]
        screen = np.zeros((height, *self._screen_rgb.shape[1:]), dtype=np.uint8)
        screen[: self._screen_rgb.shape[0]] = self._screen_rgb
        return np.concatenate([screen, panel], axis=1)

    def close(self) -> None:
        self._games.close()
        if self._screen is not None:
            self._screen.close()
