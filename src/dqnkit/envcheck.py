"""dqn-check: an env looked at before any training. It is built as training builds it, Gymnasium's own checker
runs on it, random (legal, where it gives action masks) actions step it, and the report says what dqnkit will make
of it (inputs, network, actions, masks, replay bytes a transition, env steps per second) and lists every problem
found, one line each."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dqnkit.envs import EnvRef, env_facts, make_raw_env, model_obs_shape, reset_env, step_env, takes_frames
from dqnkit.errors import UserError

# ArrayReplayBuffer's fields besides obs and next_obs: action, collect_train_iter and env_data_id (int64), done
# (bool), value_gamma (float32); the rewards are nstep float32.
FIXED_TRANSITION_BYTES = 8 + 8 + 8 + 1 + 4


@dataclass
class EnvReport:
    env_id: str
    lines: list[str] = field(default_factory=list)  # what dqnkit builds from the env
    notes: list[str] = field(default_factory=list)  # worth knowing, not in the way of training
    problems: list[str] = field(default_factory=list)


def transition_bytes(obs_dim: int, nstep: int) -> int:
    """Bytes a vector env's transition takes in dqnkit's replay buffer: obs and next_obs as float32, nstep rewards."""
    return 2 * 4 * obs_dim + 4 * nstep + FIXED_TRANSITION_BYTES


def check_env(ref: EnvRef, *, steps: int = 1000, seed: int = 0, nstep: int = 1) -> EnvReport:
    report = EnvReport(ref.env_id)
    try:
        facts = env_facts(ref)
    except UserError as e:
        report.problems.append(str(e))
        return report
    _describe(report, facts, nstep)
    env = make_raw_env(ref)
    try:
        _gymnasium_checker(report, env)
        try:
            _reset_reproduces(report, env, seed)
        except Exception as e:  # the user's env: its own exception, as the user would want to see it
            report.problems.append(f"reset: {report.env_id} raised {_one_line(e)}")
            return report
        _random_steps(report, env, steps, seed)
    finally:
        env.close()
    return report


def _describe(report: EnvReport, facts: dict[str, Any], nstep: int) -> None:
    shape = model_obs_shape(facts)
    if takes_frames(shape):
        report.lines.append(f"observations: uint8 frames {shape} -> a conv encoder (scaled to [0, 1] inside it)")
        report.lines.append("replay: each frame stored once, zlib-compressed (about 0.3 KB a transition on Atari)")
    else:
        report.lines.append(f"observations: {shape} float32 values -> an MLP (policy.model.encoder_hidden_size_list)")
        report.lines.append(f"replay: {transition_bytes(int(np.prod(facts['obs_shape'])), nstep):,} bytes a transition")
    report.lines.append(f"actions: {facts['action_count']} (Discrete) -> {facts['action_count']} Q-values")
    threshold = facts["reward_threshold"]
    report.lines.append(f"reward threshold: {threshold if threshold is not None else 'none registered'}")


def _gymnasium_checker(report: EnvReport, env: Any) -> None:
    import gymnasium
    from gymnasium.utils.env_checker import check_env as gymnasium_check

    if not isinstance(env.unwrapped, gymnasium.Env):
        report.notes.append("Gymnasium's checker: skipped (a gym 0.25 env)")
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            gymnasium_check(env.unwrapped, skip_render_check=True)
        except Exception as e:  # the checker asserts; a broken env raises whatever it raises
            report.problems.append(f"Gymnasium's checker: {_one_line(e)}")
    for warning in caught:
        report.notes.append(f"Gymnasium's checker: {_one_line(warning.message)}")


def _reset_reproduces(report: EnvReport, env: Any, seed: int) -> None:
    first, again = reset_env(env, seed), reset_env(env, seed)
    if not np.array_equal(np.asarray(first), np.asarray(again)):
        report.problems.append(
            f"reset(seed={seed}) twice gave different first observations: seeded episodes will not reproduce"
        )


@dataclass
class _Masks:
    """Where an env gives its legal actions (Gymnasium's info["action_mask"], sb3-contrib's env.action_masks()), as
    found while it plays, and the first malformed mask's line."""

    n_actions: int
    sources: list[str] = field(default_factory=list)
    problem: str | None = None

    def legal(self, env: Any, info: Any, where: str) -> np.ndarray | None:
        """The indices of the legal actions now; None when the env gives no (usable) mask."""
        found = []
        if isinstance(info, dict) and "action_mask" in info:
            found.append(("info['action_mask']", info["action_mask"]))
        method = getattr(env.unwrapped, "action_masks", None)
        if callable(method):
            found.append(("env.action_masks()", method()))
        legal = None
        for source, mask in found:
            if source not in self.sources:
                self.sources.append(source)
            checked = self._check(source, np.asarray(mask), where)
            legal = checked if legal is None else legal
        return legal

    def _check(self, source: str, mask: np.ndarray, where: str) -> np.ndarray | None:
        binary = mask.dtype == bool or (np.issubdtype(mask.dtype, np.integer) and bool(np.isin(mask, (0, 1)).all()))
        if mask.shape != (self.n_actions,):
            problem = f"{where}: {source} has shape {mask.shape}, not ({self.n_actions},) for {self.n_actions} actions"
        elif not binary:
            problem = f"{where}: {source} holds {mask.dtype} values; a mask is bool or 0/1 integers"
        elif not mask.any():
            problem = f"{where}: {source} marks no action legal"
        else:
            return np.flatnonzero(mask)
        self.problem = self.problem or problem
        return None

    def describe(self) -> str:
        if not self.sources:
            return "action masks: none found (every action legal in every state)"
        return f"action masks: {' and '.join(self.sources)}"


def _reset(env: Any, seed: int) -> Any:
    """The info of a reset (gym 0.25 gives none)."""
    out = env.reset(seed=seed)
    return out[1] if isinstance(out, tuple) and len(out) == 2 else {}


def _random_steps(report: EnvReport, env: Any, steps: int, seed: int) -> None:
    """Random legal actions (where the env gives masks) for `steps` env steps."""
    rng = np.random.default_rng(seed)
    space, n_actions = env.observation_space, int(env.action_space.n)
    masks = _Masks(n_actions)
    episodes, outside = 0, None
    started = time.perf_counter()
    legal = masks.legal(env, _reset(env, seed), "reset")
    for step in range(steps):
        try:
            action = int(rng.choice(legal)) if legal is not None else int(rng.integers(n_actions))
            obs, reward, done, info = step_env(env, action)
            if done:
                episodes += 1
                info = _reset(env, seed + episodes)
        except Exception as e:  # the user's env: its own exception, as the user would want to see it
            report.problems.append(f"env step {step}: {report.env_id} raised {_one_line(e)}")
            return
        legal = masks.legal(env, info, f"env step {step}")
        outside = outside or _outside(space, obs, step)
        if not math.isfinite(reward):
            report.problems.append(f"env step {step}: the reward is {reward}, not a finite number")
            return
    elapsed = time.perf_counter() - started
    report.problems.extend(line for line in (outside, masks.problem) if line is not None)
    report.lines.append(masks.describe())
    if masks.sources:
        report.notes.append("dqn-train does not apply action masks yet: its random actions may be illegal ones")
    report.lines.append(
        f"random play: {steps:,} env steps, {episodes} episodes ended, {steps / elapsed:,.0f} env steps/s"
    )


def _outside(space: Any, obs: Any, step: int) -> str | None:
    """A line naming the first entry of `obs` beyond the Box's bounds (or just the fact, for another space)."""
    values = np.asarray(obs, dtype=space.dtype)
    if space.contains(values):
        return None
    low, high = getattr(space, "low", None), getattr(space, "high", None)
    if low is None or high is None or values.shape != low.shape:
        return f"env step {step}: an observation outside the observation space ({type(space).__name__})"
    index = int(np.flatnonzero((values < low) | (values > high)).flat[0])
    value, lo, hi = values.flat[index], low.flat[index], high.flat[index]
    return f"env step {step}: observation entry {index} is {value:.4g}, outside the space's bounds [{lo:.4g}, {hi:.4g}]"


def _one_line(error: Any) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if isinstance(error, BaseException) else text


def env_of(target: str, cwd: Path) -> tuple[EnvRef, int]:
    """The env a config file names (with its n-step for the replay's size), or an env id given as it is."""
    from dqnkit.config import load_config_file
    from dqnkit.userenv import import_root, is_user_env

    path = Path(target)
    if path.suffix in (".py", ".yaml", ".yml"):
        main, _ = load_config_file(path)
        env = dict(main.get("env") or {})
        if not env.get("env_id"):
            raise UserError(f"{path} sets no env.env_id")
        search = [cwd, path.resolve().parent]
        nstep = int((main.get("policy") or {}).get("nstep", 1))
    else:
        env, search, nstep = {"env_id": target}, [cwd], 1
    if is_user_env(str(env["env_id"])) and not env.get("import_root"):
        env["import_root"] = import_root(str(env["env_id"]), search)
    return EnvRef.of(env), nstep
