"""Planning a run: the options of dqn-train turned into a compiled config and a run folder. Everything that can
fail on the user's input fails here, before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dqnkit import checkpoint as ckpt
from dqnkit import runfolder
from dqnkit.atari import AtariSettings, atari_game
from dqnkit.config import apply_overrides, compile_dqn_config, load_config_file, parse_override, to_plain
from dqnkit.envs import EnvRef, env_facts, model_obs_shape, require_atari_fit, require_fit
from dqnkit.errors import UserError
from dqnkit.userenv import import_root, is_user_env
from dqnkit.validate import check_policy_type, check_run_config, writable_dir


@dataclass
class TrainOptions:
    config: str | None = None
    seed: int | None = None
    exp_name: str | None = None
    runs_dir: str = "runs"
    device: str = "auto"
    max_env_steps: int | None = None
    max_train_iters: int | None = None
    stop_value: float | None = None
    env_manager: str | None = None
    overrides: list[str] = field(default_factory=list)
    resume: str | None = None
    quiet: bool = False
    command: str = ""


@dataclass
class RunPlan:
    cfg: Any  # compiled EasyDict
    main: dict[str, Any]
    create: dict[str, Any]
    run_dir: Path
    resume_from: Path | None
    resume_state: dict[str, Any] | None


def _cli_overrides(options: TrainOptions) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [parse_override(text) for text in options.overrides]
    if options.stop_value is not None:
        out.append(("env.stop_value", float(options.stop_value)))
    if options.max_env_steps is not None:
        out.append(("dqnkit.max_env_steps", int(options.max_env_steps)))
    if options.max_train_iters is not None:
        out.append(("dqnkit.max_train_iters", int(options.max_train_iters)))
    cuda = bool(torch.cuda.is_available())
    if options.device == "cuda" and not cuda:
        raise UserError("--device cuda: CUDA is not available on this machine (use --device cpu or auto)")
    if options.device != "auto" or options.resume is None:
        out.append(("policy.cuda", options.device == "cuda" or (options.device == "auto" and cuda)))
    return out


def _resume_source(target: str) -> tuple[Path, Path, dict[str, Any]]:
    """(run_dir, checkpoint, its content): a run folder resumes from its most advanced checkpoint."""
    path = Path(target)
    if path.is_dir():
        candidates = runfolder.checkpoints_newest_first(path)
        if not candidates:
            raise UserError(f"--resume {path}: the folder holds no checkpoint to resume from")
        loaded = [(candidate, ckpt.load_checkpoint(candidate)) for candidate in candidates]
        best, state = max(loaded, key=lambda item: item[1].get("train_iter", -1))
        return path, best, state
    if not path.is_file():
        raise UserError(f"--resume {path}: no such run folder or checkpoint")
    return path.parent, path, ckpt.load_checkpoint(path)


def _resumed_configs(options: TrainOptions) -> tuple[Path, Path, dict[str, Any], dict[str, Any], dict[str, Any], int]:
    """--resume: (run_dir, checkpoint, its content, main_config, create_config, seed)."""
    assert options.resume is not None
    run_dir, resume_from, state = _resume_source(options.resume)
    if not ckpt.is_dqnkit_checkpoint(state):
        raise UserError(f"--resume {resume_from}: not a dqnkit checkpoint (no counters or config to resume)")
    if options.config is not None:
        main, create = load_config_file(options.config)
    elif (run_dir / runfolder.RUN_CONFIG).is_file():
        main, create = load_config_file(run_dir / runfolder.RUN_CONFIG)
    else:
        raise UserError(f"--resume {options.resume}: {run_dir / runfolder.RUN_CONFIG} is missing; pass --config too")
    seed = options.seed if options.seed is not None else int(state["config"].get("seed", 0))
    return run_dir, resume_from, state, main, create, seed


def fill_env_facts(main: dict[str, Any], overrides: list[tuple[str, Any]], search: list[Path] | None = None) -> None:
    """What the env decides, where the config leaves it out: env.import_root (the folder of `search` a user's env
    module is in), env.atari (the preprocessing, defaults filled in) for an Atari game, policy.model.obs_shape and
    action_shape (checked either way)."""
    env = main.setdefault("env", {})
    env_id = dict(overrides).get("env.env_id", env.get("env_id"))
    if not env_id:
        return
    env_id = str(env_id)
    if is_user_env(env_id) and not env.get("import_root"):
        env["import_root"] = import_root(env_id, search or [Path.cwd()])
    if atari_game(env_id) is not None:
        env["atari"] = AtariSettings.from_config(env.get("atari")).as_dict()
    ref = EnvRef.of({**env, "env_id": env_id})
    require_atari_fit(ref, "policy.model")
    model = main.setdefault("policy", {}).setdefault("model", {})
    if "obs_shape" in model and "action_shape" in model:
        return
    facts = env_facts(ref)
    model.setdefault("obs_shape", model_obs_shape(facts))
    model.setdefault("action_shape", facts["action_count"])


def _compiled(options: TrainOptions, main: dict[str, Any], create: dict[str, Any], seed: int) -> Any:
    """The config compiled with the command line's settings, and checked."""
    check_policy_type(create)
    overrides = _cli_overrides(options)
    search = [Path.cwd(), *([Path(options.config).resolve().parent] if options.config else [])]
    fill_env_facts(main, overrides, search)
    if options.env_manager is not None:
        # The manager's defaults differ by type, so the choice goes into create_config before compiling.
        create.setdefault("env_manager", {})["type"] = options.env_manager
    apply_overrides(main, overrides, to_plain(compile_dqn_config(main, create, seed)))
    cfg = compile_dqn_config(main, create, seed)
    check_run_config(cfg)
    obs_shape = cfg.policy.model.obs_shape
    expected_obs = [int(obs_shape)] if isinstance(obs_shape, int) else [int(x) for x in obs_shape]
    require_fit(EnvRef.of(cfg.env), expected_obs, int(cfg.policy.model.action_shape), "policy.model")
    return cfg


def run_name(main: dict[str, Any], config: str | None) -> str:
    """What run folders are named after, before their _seed<S>: the config's exp_name, else its file name."""
    return str(main.get("exp_name") or Path(config or "run").stem)


def plan_run(options: TrainOptions, writes_run_folder: bool = True) -> RunPlan:
    """A collector or evaluator node of a distributed run writes nothing (writes_run_folder False): the learner's
    host holds the run folder."""
    resume_state = None
    resume_from = None
    if options.resume is not None:
        run_dir, resume_from, resume_state, main, create, seed = _resumed_configs(options)
    else:
        if options.config is None:
            raise UserError("--config is required (e.g. --config configs/cartpole.py)")
        main, create = load_config_file(options.config)
        seed = options.seed if options.seed is not None else 0
        run_dir = Path()
    cfg = _compiled(options, main, create, seed)
    if writes_run_folder and resume_state is None:
        runs_dir = Path(options.runs_dir)
        writable_dir(runs_dir, "--runs-dir")
        default_name = f"{run_name(main, options.config)}_seed{seed}"
        run_dir = runfolder.new_run_dir(runs_dir, options.exp_name, default_name)
    elif writes_run_folder:
        writable_dir(run_dir, "--resume")
    cfg.exp_name = str(run_dir)
    return RunPlan(cfg, main, create, run_dir, resume_from, resume_state)
