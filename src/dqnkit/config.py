"""Configs: load DI-engine-style configs from .py or .yaml, apply --set overrides, compile them.

A config holds `main_config` and `create_config`, exactly as DI-engine's dizoo configs do. dqnkit reads one
extra optional section, `main_config.dqnkit`, for the training budget and checkpointing (see DQNKIT_DEFAULTS), and
four keys of `policy.learn` for the learner's target and optimizer (see LEARN_DEFAULTS).
"""

from __future__ import annotations

import copy
import difflib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from dqnkit.errors import UserError

# Training budget and bookkeeping, overridable from the config file, --set dqnkit.KEY=V or CLI flags.
DQNKIT_DEFAULTS: dict[str, Any] = {
    "max_env_steps": None,  # None: no limit
    "max_train_iters": None,
    "save_freq": 500,  # train iterations between latest.pth.tar writes
    "keep_periodic": 3,  # how many iteration_<N>.pth.tar files to keep beside latest.pth.tar
    "log_freq": 100,  # train iterations between TensorBoard loss points
    "stop_min_return": None,  # also require every eval episode >= this to stop (None: eval mean only)
    "fresh_eval_episodes": True,  # False: DI-engine's fixed evaluation start states
    # Evaluation's random-action probability. None: the Atari protocol's 0.05 for a game (with its no-op starts),
    # 0 (greedy) otherwise.
    "eval_epsilon": None,
    "worker_timeout": 120,  # distributed runs: seconds a node waits for its peers before it stops as failed
    # One thread: a second one speeds the learner's matmuls but not a whole run (benchmarks/NOTES.md); None: torch's
    # default.
    "torch_threads": 1,
    # Evaluations run in a child process while training goes on; their results are acted on (metrics, best.pth.tar,
    # the stop rule) this many train iterations after the weights they scored, so that runs stay reproducible.
    # None: a quarter of policy.eval.evaluator.eval_freq.
    "eval_lag": None,
    # Save the replay buffer beside final.pth.tar (final.replay.pth.tar), priorities included, for --resume to refill
    # it: a resumed run keeps its experience (LunarLander's full 100k buffer: benchmarks/NOTES.md).
    "save_replay": True,
    # Pixel runs: keep replay frames zlib-compressed (Atari frames shrink 20-30x; sampling decompresses a batch's), so
    # that a 100k buffer's whole process stays under 1 GB; false: raw uint8 frames, ~7% faster (benchmarks/NOTES.md).
    "compress_frames": True,
}
# Keys dqnkit's learner reads beside DQNPolicy's own in policy.learn (dingext.munchausen): the regression target.
LEARN_DEFAULTS: dict[str, Any] = {
    "td_target": "double_dqn",  # DQNPolicy's; or "munchausen"
    "munchausen_tau": 0.3,  # the softmax temperature (DI-engine's mdqn: 0.03, for Atari's clipped rewards)
    "munchausen_alpha": 0.9,  # the weight of the log-policy term
    "adam_eps": 1e-8,  # Adam's epsilon; torch's default, which DQNPolicy's Adam uses
}
# dqnkit keys whose null means something (no limit, no minimum, torch's default, the default lag): --set may clear
# them.
NULLABLE_KEYS = {
    f"dqnkit.{name}"
    for name in ("max_env_steps", "max_train_iters", "stop_min_return", "torch_threads", "eval_lag", "eval_epsilon")
}


def load_config_file(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (main_config, create_config) as plain dicts. Python configs are code: only load trusted ones."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".py":
        main, create = _load_python(path)
    elif suffix in (".yaml", ".yml"):
        main, create = _load_yaml(path)
    else:
        raise UserError(f"config {path} must be a .py or .yaml file, not {suffix or 'extensionless'}")
    if not isinstance(main, dict) or not isinstance(create, dict):
        raise UserError(f"config {path}: main_config and create_config must both be mappings")
    return to_plain(main), to_plain(create)


def _load_python(path: Path) -> tuple[Any, Any]:
    module_name = f"_dqnkit_config_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"config {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise UserError(f"config {path} has a syntax error at line {e.lineno}: {e.msg}") from e
    except Exception as e:
        raise UserError(f"config {path} failed to import: {type(e).__name__}: {e}") from e
    finally:
        sys.modules.pop(module_name, None)
    missing = [name for name in ("main_config", "create_config") if not hasattr(module, name)]
    if missing:
        raise UserError(f"config {path} does not define {' and '.join(missing)}")
    return module.main_config, module.create_config


def _load_yaml(path: Path) -> tuple[Any, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"config {path} is not valid YAML{where}: {getattr(e, 'problem', e)}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"config {path} cannot be read: {e}") from e
    if not isinstance(data, dict) or "main_config" not in data or "create_config" not in data:
        raise UserError(f"config {path} must have top-level keys main_config and create_config")
    return data["main_config"], data["create_config"]


def to_plain(value: Any) -> Any:
    """EasyDicts, tuples and numpy scalars -> plain dict/list/int/float/str, safe for YAML and weights_only."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return value.item()
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return str(value)


_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_override(text: str) -> tuple[str, Any]:
    """'a.b.c=value' -> ('a.b.c', value) with the value read as a YAML scalar (so 1e-3 is a float)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise UserError(f"--set expects dotted.key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise UserError(f"--set {key}: cannot parse value {raw!r}: {getattr(e, 'problem', e)}") from e
    if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 reads '5e-4' as a string; users mean a number
    return key, value


def flat_keys(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        full = f"{prefix}{k}"
        out[full] = v
        if isinstance(v, dict):
            out.update(flat_keys(v, full + "."))
    return out


def coerce_value(key: str, current: Any, value: Any, where: str = "--set") -> Any:
    """Check a value for a config key (from `where`: --set, a search space) against the type of the value it
    replaces."""

    def bad(expected: str) -> UserError:
        return UserError(f"{where} {key}={value!r}: expected {expected} (current value {current!r})")

    if current is None or (value is None and key in NULLABLE_KEYS):
        return value
    if isinstance(current, dict):
        raise UserError(
            f"{where} {key}: {key} is a section, set one of its keys (e.g. {key}.{next(iter(current), 'x')})"
        )
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int | float) or float(value) != int(value):
            raise bad("an integer")
        return int(value)
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        return float(value)
    if isinstance(current, list):
        if not isinstance(value, list):
            raise bad("a list such as [512, 64]")
        return value
    if isinstance(current, str):
        if isinstance(value, dict | list):
            raise bad("a string")
        return str(value)
    return value


def apply_overrides(main: dict[str, Any], overrides: list[tuple[str, Any]], compiled: dict[str, Any]) -> None:
    """Write overrides into the raw main config. Keys must exist in the compiled config (typos are caught)."""
    known = flat_keys(compiled)
    for key, value in overrides:
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise UserError(f"--set {key}: no such key in the compiled config{hint}")
        coerced = coerce_value(key, known[key], value)
        node = main
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = coerced


def compile_dqn_config(main: dict[str, Any], create: dict[str, Any], seed: int) -> Any:
    """DI-engine's compile_config(auto=True) plus dqnkit's own section; returns an EasyDict."""
    from easydict import EasyDict

    from dqnkit.quiet import import_ding_quietly

    import_ding_quietly()
    from ding.config import compile_config

    main, create = copy.deepcopy(main), copy.deepcopy(create)
    create.setdefault("env_manager", {}).setdefault("type", "base")  # dqnkit's default: envs in this process
    main["dqnkit"] = {**DQNKIT_DEFAULTS, **main.get("dqnkit", {})}
    policy = main.setdefault("policy", {})
    policy["learn"] = {**LEARN_DEFAULTS, **policy.get("learn", {})}
    try:
        return compile_config(EasyDict(main), create_cfg=EasyDict(create), seed=seed, auto=True, save_cfg=False)
    except (KeyError, AttributeError, TypeError, ValueError, AssertionError) as e:
        raise UserError(f"config does not compile with DI-engine: {type(e).__name__}: {e}") from e
