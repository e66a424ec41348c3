"""Environments: which library owns an id (gym 0.25, Gymnasium 1.x, ale-py's Atari games, a user's own module) and
how to build it, from an `EnvRef`: the `env` section of a run's config, or of an export's metadata."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from dqnkit.envguard import guard
from dqnkit.errors import UserError
from dqnkit.quiet import quiet_output, silence_warnings

Backend = Literal["gym", "gymnasium", "atari", "user"]


@dataclass(frozen=True)
class EnvRef:
    """Everything that builds a run's env: the id, the constructor's keyword arguments (env.kwargs), the folder a
    user's env module was found in (env.import_root, recorded by dqn-train) and the Atari preprocessing
    (env.atari)."""

    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    import_root: str | None = None
    atari: dict[str, Any] | None = None

    @classmethod
    def of(cls, env: Mapping[str, Any]) -> EnvRef:
        """From a config's `env` section (or an export's metadata, which records the same keys)."""
        kwargs, atari = env.get("kwargs"), env.get("atari")
        return cls(str(env["env_id"]), dict(kwargs or {}), env.get("import_root"), dict(atari) if atari else None)

    def recorded(self) -> dict[str, Any]:
        return {"env_id": self.env_id, "kwargs": self.kwargs, "import_root": self.import_root, "atari": self.atari}

    def with_id(self, env_id: str) -> EnvRef:
        """Another env for the same network (dqn-eval --env): the preprocessing kept, the constructor's arguments
        only for the same id."""
        if env_id == self.env_id:
            return self
        return EnvRef(env_id, atari=self.atari)


@lru_cache(maxsize=1)
def _registries() -> tuple[frozenset[str], frozenset[str]]:
    silence_warnings()
    with quiet_output():  # gym prints an "unmaintained" banner on import
        import gym
        import gymnasium

        from dqnkit.atari import register_games

        register_games()
    return frozenset(gym.envs.registry.keys()), frozenset(gymnasium.envs.registry.keys())


def env_backend(env_id: str) -> Backend:
    """A user's module (`module:Name`), ale-py's Atari games (played through dqnkit.atari), then gym (DI-engine's
    native API), then Gymnasium for ids only it has (e.g. LunarLander-v3)."""
    from dqnkit.userenv import is_user_env

    if is_user_env(env_id):
        return "user"
    gym_ids, gymnasium_ids = _registries()
    from dqnkit.atari import atari_game

    if atari_game(env_id) is not None:
        return "atari"
    if env_id in gym_ids:
        return "gym"
    if env_id in gymnasium_ids:
        return "gymnasium"
    close = difflib.get_close_matches(env_id, sorted(gym_ids | gymnasium_ids), n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else " (your own env: module:ClassName)"
    raise UserError(f"unknown environment id {env_id!r} (not registered in gym or gymnasium){hint}")


class _InertParticle:
    """Takes the impulse gym 0.25's LunarLander gives a new flame particle, and does nothing with it."""

    def ApplyLinearImpulse(self, *_args: Any) -> None:
        pass


_INERT_PARTICLE = _InertParticle()


def _no_particle(*_args: Any) -> _InertParticle:
    return _INERT_PARTICLE


def _without_decorative_particles(env: Any) -> Any:
    """gym 0.25's LunarLander creates a Box2D body for every engine puff and removes them only while rendering:
    with no window they pile up and slow every physics step (benchmarks/NOTES.md). They only ever touch the ground
    (Gymnasium's LunarLander-v3 skips them when not rendering, "no impact on the physics"), so an env without a
    window creates none: bit-identical observations and rewards (tests/e2e/test_eval.py)."""
    lander = env.unwrapped
    if hasattr(lander, "_create_particle"):
        lander._create_particle = _no_particle  # this env only
    return env


def _atari_game(ref: EnvRef, training: bool, render_mode: str | None = None, agent_view: bool = False) -> Any:
    from dqnkit.atari import AtariGame, AtariSettings, atari_game

    settings = AtariSettings.from_config(ref.atari)
    game = atari_game(ref.env_id)
    assert game is not None  # only for ids env_backend found to be Atari games
    if ref.kwargs:
        raise UserError(f"env.kwargs {sorted(ref.kwargs)} do not apply to Atari games; env.atari sets their options")
    return AtariGame(game, settings if training else settings.for_evaluation(), training, render_mode, agent_view)


def _user_env(ref: EnvRef, for_ding: bool, render_mode: str | None = None) -> Any:
    from dqnkit.userenv import build

    kwargs = {**ref.kwargs, "render_mode": render_mode} if render_mode is not None else ref.kwargs
    return build(ref.env_id, ref.import_root, kwargs, for_ding)


def make_raw_env(ref: EnvRef, render_mode: str | None = None, agent_view: bool = False) -> Any:
    """A plain gym/gymnasium env (no DI-engine), used by evaluation and export rollouts; an Atari game is played
    by the evaluation protocol with the preprocessing `ref.atari` (defaults where None), and renders its real screen
    (with `agent_view`, the agent's frame beside it)."""
    backend = env_backend(ref.env_id)
    silence_warnings()
    if backend == "atari":
        return _atari_game(ref, False, render_mode, agent_view)
    if backend == "user":
        return _user_env(ref, False, render_mode)
    env_id, kwargs = ref.env_id, ref.kwargs
    if backend == "gym":
        import gym

        if render_mode == "rgb_array":
            render_mode = "single_rgb_array"  # gym 0.25's "rgb_array" returns every frame since reset
        # gym 0.25's default wrappers print deprecation noise on every make.
        with quiet_output():
            # The passive env checker only validates a new env's API, at a cost on every step (benchmarks/NOTES.md).
            env = gym.make(env_id, render_mode=render_mode, new_step_api=True, disable_env_checker=True, **kwargs)
        return env if render_mode is not None else _without_decorative_particles(env)
    import gymnasium

    return gymnasium.make(env_id, render_mode=render_mode, **kwargs)


def make_ding_env(ref: EnvRef, training: bool = True) -> Any:
    """A DI-engine env: DingEnvWrapper around gym or Gymnasium (it detects which). Picklable via partial. An Atari
    game gets the preprocessing `ref.atari`: for training (lost lives end episodes, clipped rewards), or played by
    the evaluation protocol (training False)."""
    env_id, kwargs = ref.env_id, ref.kwargs
    backend = env_backend(env_id)
    silence_warnings()
    from easydict import EasyDict

    from dqnkit.quiet import mute_ding_logging

    with quiet_output():
        import gym
        import gymnasium
        from ding.envs import DingEnvWrapper

        if backend == "atari":
            raw: Any = _atari_game(ref, training)
        elif backend == "user":
            raw = _user_env(ref, for_ding=True)
        elif backend == "gym":
            raw = _without_decorative_particles(gym.make(env_id, **kwargs))
        else:
            raw = gymnasium.make(env_id, **kwargs)
    mute_ding_logging()
    return DingEnvWrapper(guard(raw, env_id), cfg=EasyDict({"env_id": env_id}))


def _check_spaces(env_id: str, env: Any) -> None:
    """DQN acts on an array of observations with a finite set of actions."""
    obs_space, action_space = env.observation_space, env.action_space
    if getattr(obs_space, "shape", None) is None or type(obs_space).__name__ != "Box":
        raise UserError(
            f"{env_id} observes a {type(obs_space).__name__} space; dqnkit trains on Box (array) observations "
            "with Discrete actions (flatten the observation with a wrapper)"
        )
    if not hasattr(action_space, "n") or type(action_space).__name__ != "Discrete":
        raise UserError(
            f"{env_id} acts in a {type(action_space).__name__} space; dqnkit's DQN family needs Discrete actions"
        )


def env_facts(ref: EnvRef) -> dict[str, Any]:
    """What reports and exports need to know about an env: obs shape, actions, threshold, fps."""
    env_id = ref.env_id
    env = make_raw_env(ref)
    try:
        _check_spaces(env_id, env)
        spec = env.spec
        facts = {
            "env_id": env_id,
            "obs_shape": list(env.observation_space.shape),
            "action_count": int(env.action_space.n),
            "reward_threshold": getattr(spec, "reward_threshold", None),
            "render_fps": int(env.metadata.get("render_fps") or 30),
            "obs_low": [float(x) for x in getattr(env.observation_space, "low", np.empty(0)).reshape(-1)],
            "obs_high": [float(x) for x in getattr(env.observation_space, "high", np.empty(0)).reshape(-1)],
        }
    finally:
        env.close()
    return facts


def require_fit(ref: EnvRef, obs_shape: list[int], action_count: int, owner: str) -> dict[str, Any]:
    """The env's facts, or a one-line error when a Q-network of these shapes (behind the Atari preprocessing
    `ref.atari`, if any) cannot act in it."""
    env_id = ref.env_id
    require_atari_fit(ref, owner)
    facts = env_facts(ref)
    if facts["obs_shape"] != obs_shape or facts["action_count"] != action_count:
        fix = (
            f"; set policy.model.obs_shape={model_obs_shape(facts)} and action_shape={facts['action_count']}, "
            "or leave both out and dqn-train takes them from the env"
            if owner == "policy.model"
            else ""
        )
        raise UserError(
            f"{owner} expects observations {obs_shape} and {action_count} actions, "
            f"but {env_id} has {facts['obs_shape']} and {facts['action_count']}{fix}"
        )
    return facts


def require_atari_fit(ref: EnvRef, owner: str) -> None:
    """The Atari preprocessing (and a network trained behind it) goes with Atari games only."""
    if ref.atari is not None and env_backend(ref.env_id) != "atari":
        fix = "remove env.atari or use an ALE id such as ALE/Pong-v5" if owner == "policy.model" else "use an Atari id"
        raise UserError(f"{owner} takes Atari frames (env.atari) but {ref.env_id} is not an Atari game; {fix}")


def model_obs_shape(facts: dict[str, Any]) -> int | list[int]:
    """policy.model.obs_shape for an env: a number for vectors (DI-engine's fully connected encoder), the shape
    otherwise."""
    shape = facts["obs_shape"]
    return int(shape[0]) if len(shape) == 1 else [int(x) for x in shape]


def takes_frames(obs_shape: Any) -> bool:
    """policy.model.obs_shape of an image stack [channels, height, width]: DI-engine builds its conv encoder."""
    return not isinstance(obs_shape, int) and len(obs_shape) == 3


def reset_env(env: Any, seed: int | None) -> Any:
    """Observation after reset, for gym 0.25 (obs) and Gymnasium (obs, info) alike."""
    out = env.reset(seed=seed)
    return out[0] if isinstance(out, tuple) else out


def step_env(env: Any, action: int) -> tuple[Any, float, bool, dict[str, Any]]:
    """(obs, reward, done, info) from a 5-tuple step (gym with new_step_api=True, or Gymnasium)."""
    obs, reward, terminated, truncated, info = env.step(action)
    return obs, float(reward), bool(terminated or truncated), info
