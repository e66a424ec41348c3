"""Every check of what a user gives dqnkit, made before any work starts: the values of a compiled config (types
and ranges of the keys DI-engine's DQN and dqnkit read) and the paths a command will write."""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dqnkit.atari import ATARI_EPSILON
from dqnkit.errors import UserError

TD_TARGETS = ("double_dqn", "munchausen")
POLICY_TYPES = ("dqn", "c51", "qrdqn", "iqn", "rainbow")  # dingext.family.ALGORITHMS builds each
ENV_MANAGERS = ("base", "subprocess")
EPSILON_SCHEDULES = ("exp", "linear")


@dataclass(frozen=True)
class Range:
    """A number's allowed values: whole or not, bounds (inclusive unless open), null allowed or not."""

    whole: bool
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    nullable: bool = False

    def admits(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return False
        if self.whole and not isinstance(value, int):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        low = f"{'>' if self.low_open else '>='} {self.low:g}" if math.isfinite(self.low) else ""
        high = f"{'<' if self.high_open else '<='} {self.high:g}" if math.isfinite(self.high) else ""
        if low and high and not self.low_open and not self.high_open:
            bounds = f" from {self.low:g} to {self.high:g}"
        else:
            bounds = " " + " and ".join(b for b in (low, high) if b) if low or high else ""
        return f"{kind}{bounds}{' or null' if self.nullable else ''}"


COUNT = Range(whole=True, low=1)
POSITIVE = Range(whole=False, low=0, low_open=True)
FRACTION = Range(whole=False, low=0, high=1)
# Every numeric key of a compiled config that DI-engine's DQN pipeline or dqnkit reads, with its allowed values.
RANGES: dict[str, Range] = {
    "env.collector_env_num": COUNT,
    "env.evaluator_env_num": COUNT,
    "env.n_evaluator_episode": COUNT,
    "env.stop_value": Range(whole=False),
    "policy.discount_factor": FRACTION,
    "policy.nstep": COUNT,
    "policy.learn.learning_rate": POSITIVE,
    "policy.learn.adam_eps": POSITIVE,
    "policy.learn.batch_size": COUNT,
    "policy.learn.update_per_collect": COUNT,
    "policy.learn.target_update_freq": COUNT,
    "policy.learn.target_theta": Range(whole=False, low=0, high=1, low_open=True),
    "policy.collect.n_sample": COUNT,
    "policy.eval.evaluator.eval_freq": COUNT,
    "policy.other.replay_buffer.replay_buffer_size": COUNT,
    "policy.other.eps.start": FRACTION,
    "policy.other.eps.end": FRACTION,
    "policy.other.eps.decay": POSITIVE,
    "dqnkit.max_env_steps": Range(whole=True, low=1, nullable=True),
    "dqnkit.max_train_iters": Range(whole=True, low=1, nullable=True),
    "dqnkit.save_freq": COUNT,
    "dqnkit.keep_periodic": Range(whole=True, low=0),
    "dqnkit.log_freq": COUNT,
    "dqnkit.stop_min_return": Range(whole=False, nullable=True),
    "dqnkit.eval_epsilon": Range(whole=False, low=0, high=1, nullable=True),
    "dqnkit.worker_timeout": POSITIVE,
    "dqnkit.torch_threads": Range(whole=True, low=1, nullable=True),
}


def _lookup(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _one_of(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UserError(f"{key} must be one of {', '.join(choices)}, not {value!r}{hint}")


def _require(key: str, value: Any, allowed: Range) -> None:
    if not allowed.admits(value):
        raise UserError(f"{key} must be {allowed.describe()}, not {value!r}")


def check_ranges(cfg: Any) -> None:
    for key, allowed in RANGES.items():
        try:
            value = _lookup(cfg, key)
        except KeyError:
            missing = f"the config sets no {key} (DI-engine has no default for it)"
            raise UserError(f"{missing}: {allowed.describe()}") from None
        _require(key, value, allowed)
    sizes = [int(x) for x in cfg.policy.model.get("encoder_hidden_size_list") or []]
    if any(size < 1 for size in sizes):
        raise UserError(f"policy.model.encoder_hidden_size_list must hold whole numbers >= 1, not {sizes!r}")
    if cfg.policy.get("priority_IS_weight") and not cfg.policy.get("priority"):
        raise UserError("policy.priority_IS_weight needs policy.priority (prioritized replay): set both or neither")
    batch, buffer = cfg.policy.learn.batch_size, cfg.policy.other.replay_buffer.replay_buffer_size
    if buffer < batch:
        raise UserError(
            f"policy.other.replay_buffer.replay_buffer_size ({buffer}) must hold at least one batch "
            f"(policy.learn.batch_size {batch})"
        )


def check_policy_type(create: dict[str, Any]) -> None:
    """create_config.policy.type, before DI-engine compiles the config around it."""
    policy = create.get("policy")
    _one_of("create_config.policy.type", policy.get("type") if isinstance(policy, dict) else None, POLICY_TYPES)


def _check_family_model(cfg: Any) -> None:
    """The keys of the distributional models that their policies read."""
    policy_type, model = cfg.policy.type, cfg.policy.model
    if policy_type in ("c51", "rainbow"):
        _require("policy.model.n_atom", model.n_atom, Range(whole=True, low=2))
        v_min, v_max = model.v_min, model.v_max
        if not (Range(whole=False).admits(v_min) and Range(whole=False).admits(v_max) and v_min < v_max):
            raise UserError(f"policy.model.v_min ({v_min!r}) must be a number below policy.model.v_max ({v_max!r})")
    if policy_type in ("qrdqn", "iqn") and "num_quantiles" in model:
        _require("policy.model.num_quantiles", model.num_quantiles, COUNT)
    if policy_type == "iqn":
        _require("policy.learn.kappa", cfg.policy.learn.kappa, POSITIVE)


def check_td_target(learn: Any, policy_type: str) -> None:
    """policy.learn's td_target and its Munchausen parameters as set."""
    _one_of("policy.learn.td_target", learn.td_target, TD_TARGETS)
    if learn.td_target != "double_dqn" and policy_type != "dqn":
        raise UserError(
            f"policy.learn.td_target {learn.td_target} is DQN's; policy type {policy_type} has its own target"
        )
    if learn.td_target == "munchausen":
        _require("policy.learn.munchausen_tau", learn.munchausen_tau, POSITIVE)
        _require("policy.learn.munchausen_alpha", learn.munchausen_alpha, Range(whole=False, low=0))


def resolved_eval_lag(cfg: Any) -> int:
    """dqnkit.eval_lag as a run uses it: the value set, or a quarter of eval_freq; at least 0, below eval_freq."""
    eval_freq = int(cfg.policy.eval.evaluator.eval_freq)
    value = cfg.dqnkit.eval_lag
    if value is None:
        return eval_freq // 4
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < eval_freq:
        raise UserError(
            f"dqnkit.eval_lag must be a whole number from 0 to eval_freq - 1 ({eval_freq - 1}) or null, not {value!r}"
        )
    return value


def check_run_config(cfg: Any) -> None:
    """A compiled config as training needs it; fills in dqnkit.eval_lag and dqnkit.eval_epsilon, so that config.yaml
    records the values the run used."""
    if not cfg.env.get("env_id"):
        raise UserError("the config sets no env.env_id (e.g. env_id='CartPole-v1')")
    _one_of("env manager", cfg.env.manager.type, ENV_MANAGERS)
    _one_of("policy.other.eps.type", cfg.policy.other.eps.type, EPSILON_SCHEDULES)
    check_ranges(cfg)
    _check_family_model(cfg)
    check_td_target(cfg.policy.learn, cfg.policy.type)
    cfg.dqnkit.eval_lag = resolved_eval_lag(cfg)
    if cfg.dqnkit.eval_epsilon is None:  # the Atari protocol's for a game, greedy otherwise
        cfg.dqnkit.eval_epsilon = ATARI_EPSILON if cfg.env.get("atari") else 0.0
    if not isinstance(cfg.dqnkit.save_replay, bool):
        raise UserError(f"dqnkit.save_replay must be true or false, not {cfg.dqnkit.save_replay!r}")
    if not isinstance(cfg.dqnkit.compress_frames, bool):
        raise UserError(f"dqnkit.compress_frames must be true or false, not {cfg.dqnkit.compress_frames!r}")


# --- output paths ------------------------------------------------------------------------------------------------


def _probe(directory: Path) -> None:
    """Write and remove an empty file in `directory`: the one sure test that files can be written there."""
    probe = directory / f".dqnkit-write-probe-{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()


def writable_dir(directory: Path, what: str, create: bool = True) -> None:
    """Prove that files can be written in `directory`, creating it (create) or checking the folder it would be
    created in, or a UserError naming `what` (the option or setting the path came from) and the reason."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{what} {directory} is not writable: {existing} is a file, not a folder")
    try:
        if create:
            directory.mkdir(parents=True, exist_ok=True)
        _probe(directory if create else existing)
    except OSError as e:
        raise UserError(f"{what} {directory} is not writable ({e.strerror or e}); choose another folder") from e


def writable_file(path: Path, what: str, suffixes: tuple[str, ...] | None = None) -> None:
    """Check that `path` can be written as a file (its folder exists and takes files, it is not a folder, its
    suffix is one of `suffixes`), without creating it, or a UserError naming `what` and the reason."""
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise UserError(f"{what} {path}: the file must end in {' or '.join(suffixes)}")
    parent = path.parent if str(path.parent) else Path()
    if not parent.is_dir():
        kind = "is not a folder" if parent.exists() else "does not exist"
        raise UserError(f"{what} {path}: {parent} {kind}")
    if path.is_dir():
        raise UserError(f"{what} {path}: that is a folder; name a file")
    try:
        _probe(parent)
    except OSError as e:
        raise UserError(f"{what} {path}: cannot write in {parent} ({e.strerror or e})") from e
