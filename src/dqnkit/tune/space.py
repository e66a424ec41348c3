"""A search space: config keys (as `dqn-train --set` names them) and the values dqn-tune may give each, read from a
YAML file. An entry is either a list of choices or a range:

    policy.learn.batch_size: [32, 64, 128]                       # choices (lists allowed: network widths)
    policy.learn.learning_rate: {low: 1.0e-4, high: 3.0e-3, log: true}   # a float range
    policy.other.eps.decay: {low: 2000, high: 50000, log: true}  # integers at both ends: an integer range

Each algorithm has a default file beside this module (spaces/<policy type>.yaml)."""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml

from dqnkit.config import coerce_value, flat_keys
from dqnkit.errors import UserError

SPACES_DIR = Path(__file__).with_name("spaces")
RANGE_KEYS = {"low", "high", "log"}
EVAL_FREQ = "policy.eval.evaluator.eval_freq"
UPDATES = "policy.learn.update_per_collect"
COLLECTED = "policy.collect.n_sample"


@dataclass(frozen=True)
class Choices:
    """Optuna's categorical distribution holds only scalars: a list value (network widths) travels as its JSON."""

    key: str
    values: tuple[Any, ...]

    def suggest(self, trial: optuna.Trial) -> Any:
        encoded = [json.dumps(v) if isinstance(v, list) else v for v in self.values]
        picked = trial.suggest_categorical(self.key, encoded)
        return decode(picked)


@dataclass(frozen=True)
class Range:
    key: str
    low: float
    high: float
    log: bool
    integer: bool

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)


Entry = Choices | Range


def decode(value: Any) -> Any:
    """A parameter as Optuna stores it back to its config value ('[512, 64]' -> [512, 64])."""
    if isinstance(value, str) and value.startswith("["):
        return json.loads(value)
    return value


def default_space_file(policy_type: str) -> Path:
    path = SPACES_DIR / f"{policy_type}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))
        raise UserError(
            f"no default search space for policy type {policy_type!r} (have {', '.join(known)}): pass --space"
        )
    return path


def load_space(path: Path, compiled: dict[str, Any]) -> list[Entry]:
    """The entries of a space file, each checked against the compiled config it will be applied to."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise UserError(f"cannot read search space {path}: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise UserError(f"search space {path} is not valid YAML: {getattr(e, 'problem', e)}") from e
    if not isinstance(data, dict) or not data:
        raise UserError(f"search space {path} must map config keys to choices or ranges, e.g. policy.nstep: [1, 3, 5]")
    known = flat_keys(compiled)
    return [_entry(path, str(key), spec, known) for key, spec in data.items()]


def _entry(path: Path, key: str, spec: Any, known: dict[str, Any]) -> Entry:
    if key not in known:
        close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UserError(f"search space {path}: {key} is not a key of the compiled config{hint}")
    where = f"search space {path}:"
    if isinstance(spec, list):
        if not spec:
            raise UserError(f"{where} {key} has no choices")
        return Choices(key, tuple(coerce_value(key, known[key], v, where) for v in spec))
    if not isinstance(spec, dict) or not {"low", "high"} <= set(spec) or set(spec) - RANGE_KEYS:
        raise UserError(f"{where} {key} must be a list of choices or {{low: L, high: H}} with an optional log: true")
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high)):
        raise UserError(f"{where} {key}: low and high must be numbers, got {low!r} and {high!r}")
    if not low < high or not isinstance(log, bool) or (log and low <= 0):
        raise UserError(f"{where} {key}: needs low < high (and low > 0 with log: true), got {spec}")
    coerce_value(key, known[key], low, where)
    coerce_value(key, known[key], high, where)
    integer = isinstance(known[key], int) and not isinstance(known[key], bool)
    return Range(key, float(low), float(high), log, integer)


def sample(space: list[Entry], trial: optuna.Trial) -> dict[str, Any]:
    """One configuration: each key's value for this trial."""
    return {entry.key: entry.suggest(trial) for entry in space}


def config_values(space: list[Entry], compiled: dict[str, Any]) -> dict[str, Any] | None:
    """The config's own values of the space's keys, as Optuna stores them; None when one lies outside the space."""
    known = flat_keys(compiled)
    values: dict[str, Any] = {}
    for entry in space:
        value = known[entry.key]
        if isinstance(entry, Choices):
            if value not in entry.values:
                return None
            values[entry.key] = json.dumps(value) if isinstance(value, list) else value
        elif isinstance(value, bool) or not isinstance(value, int | float) or not entry.low <= value <= entry.high:
            return None
        else:
            values[entry.key] = value
    return values


def derived(compiled: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Keys that follow from the sampled ones. `eval_freq` counts train iterations: a trial that changes how many
    env steps an iteration takes gets it rescaled, so that every trial is evaluated as many env steps apart as the
    config says and the stop rule judges all of them on the same grid."""
    known = flat_keys(compiled)
    if EVAL_FREQ in params or not {UPDATES, COLLECTED} & set(params):
        return {}
    updates, collected = params.get(UPDATES, known[UPDATES]), params.get(COLLECTED, known[COLLECTED])
    env_steps_apart = known[EVAL_FREQ] * known[COLLECTED] / known[UPDATES]
    return {EVAL_FREQ: max(1, round(env_steps_apart * updates / collected))}


def as_overrides(params: dict[str, Any]) -> list[str]:
    """Parameters as `dqn-train --set` arguments (JSON is a YAML scalar or flow list)."""
    return [f"{key}={json.dumps(decode(value))}" for key, value in params.items()]
