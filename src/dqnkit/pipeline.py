"""Training: a DI-engine config run through DI-engine's own middleware pipeline, with dqnkit's run folder.

Order of middleware (as in DI-engine's dizoo LunarLander example): interaction_evaluator, eps_greedy_handler,
StepCollector, nstep_reward_enhancer (dqnkit's corrected copy, ding_fixes), data_pusher, OffPolicyLearner,
online_logger, then dqnkit's RunRecorder (checkpoints, metrics.csv, progress) in place of CkptSaver, then
termination_checker. In a single process interaction_evaluator runs in a child process beside training
(background_eval).
"""

from __future__ import annotations

import copy
import csv
import gc
import json
import math
import os
import pprint
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from dqnkit import checkpoint as ckpt
from dqnkit.config import (
    apply_overrides,
    check_td_target,
    checked_torch_threads,
    compile_dqn_config,
    load_config_file,
    parse_override,
    resolved_eval_lag,
    to_plain,
)
from dqnkit.ding_fixes import (
    fast_batch_collation,
    fast_dqn_policy,
    fast_tree_construction,
    launched_once,
    nstep_reward_enhancer,
)
from dqnkit.envs import make_ding_env, require_fit
from dqnkit.errors import Interrupted, TrainingFailed, UserError, interrupting_signal
from dqnkit.plotting import METRICS_FIELDS, plot_runs
from dqnkit.progress import ProgressLine, format_duration

if TYPE_CHECKING:
    from dqnkit.distributed import Node

RUN_CONFIG = "run_config.yaml"  # main_config + create_config as given (after --set): what --resume reloads
EVAL_SEED_OFFSET = 100_003  # evaluation episodes draw seeds apart from the collector's
COLLECTOR_STREAM = 1  # names the collector's numpy stream within the run seed's SeedSequence


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


# ---------------------------------------------------------------------------------------------------------------
# Planning: everything that can fail on user input fails here, before anything is written.


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _cli_overrides(options: TrainOptions) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [parse_override(text) for text in options.overrides]
    if options.stop_value is not None:
        out.append(("env.stop_value", float(options.stop_value)))
    if options.max_env_steps is not None:
        out.append(("dqnkit.max_env_steps", int(options.max_env_steps)))
    if options.max_train_iters is not None:
        out.append(("dqnkit.max_train_iters", int(options.max_train_iters)))
    if options.device == "cuda" and not _cuda_available():
        raise UserError("--device cuda: CUDA is not available on this machine (use --device cpu or auto)")
    if options.device != "auto" or options.resume is None:
        use_cuda = options.device == "cuda" or (options.device == "auto" and _cuda_available())
        out.append(("policy.cuda", use_cuda))
    return out


def _resume_source(target: str) -> tuple[Path, Path, dict[str, Any]]:
    """(run_dir, checkpoint, its content): a run folder resumes from its most advanced checkpoint."""
    path = Path(target)
    if path.is_dir():
        candidates = [path / name for name in ckpt.NEWEST_FIRST if (path / name).is_file()]
        if not candidates:
            raise UserError(f"--resume {path}: the folder holds no checkpoint to resume from")
        loaded = [(candidate, ckpt.load_checkpoint(candidate)) for candidate in candidates]
        best, state = max(loaded, key=lambda item: item[1].get("train_iter", -1))
        return path, best, state
    if not path.is_file():
        raise UserError(f"--resume {path}: no such run folder or checkpoint")
    return path.parent, path, ckpt.load_checkpoint(path)


def _writable_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".dqnkit-write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"runs dir {directory} is not writable ({e.strerror or e}); pick another --runs-dir") from e


def _new_run_dir(runs_dir: Path, exp_name: str | None, default_name: str) -> Path:
    if exp_name is not None:
        if not exp_name or Path(exp_name).name != exp_name:
            raise UserError(f"--exp-name {exp_name!r} must be a plain folder name")
        run_dir = runs_dir / exp_name
        if run_dir.exists() and any(run_dir.iterdir()):
            raise UserError(
                f"run folder {run_dir} already exists; choose another --exp-name or continue it with --resume {run_dir}"
            )
        return run_dir
    run_dir = runs_dir / default_name
    n = 2
    while run_dir.exists():
        run_dir = runs_dir / f"{default_name}_{n}"
        n += 1
    return run_dir


def plan_run(options: TrainOptions, writes_run_folder: bool = True) -> RunPlan:
    resume_state = None
    resume_from = None
    if options.resume is not None:
        run_dir, resume_from, resume_state = _resume_source(options.resume)
        if not ckpt.is_dqnkit_checkpoint(resume_state):
            raise UserError(f"--resume {resume_from}: not a dqnkit checkpoint (no counters or config to resume)")
        if options.config is not None:
            main, create = load_config_file(options.config)
        elif (run_dir / RUN_CONFIG).is_file():
            main, create = load_config_file(run_dir / RUN_CONFIG)
        else:
            raise UserError(f"--resume {options.resume}: {run_dir / RUN_CONFIG} is missing; pass --config too")
        seed = options.seed if options.seed is not None else int(resume_state["config"].get("seed", 0))
    else:
        if options.config is None:
            raise UserError("--config is required (e.g. --config configs/cartpole.py)")
        main, create = load_config_file(options.config)
        seed = options.seed if options.seed is not None else 0
        run_dir = Path()

    overrides = _cli_overrides(options)
    if options.env_manager is not None:
        # The manager's defaults differ by type, so the choice goes into create_config before compiling.
        create.setdefault("env_manager", {})["type"] = options.env_manager
    compiled = compile_dqn_config(main, create, seed)
    apply_overrides(main, overrides, to_plain(compiled))
    cfg = compile_dqn_config(main, create, seed)

    env_id = cfg.env.get("env_id")
    if not env_id:
        raise UserError("the config sets no env.env_id (e.g. env_id='CartPole-v1')")
    obs_shape = cfg.policy.model.obs_shape
    expected_obs = [int(obs_shape)] if isinstance(obs_shape, int) else [int(x) for x in obs_shape]
    require_fit(env_id, expected_obs, int(cfg.policy.model.action_shape), "policy.model")
    if cfg.env.manager.type not in ("base", "subprocess"):
        raise UserError(f"env manager {cfg.env.manager.type!r} is not supported; use base or subprocess")
    checked_torch_threads(cfg.dqnkit.torch_threads)  # a bad setting fails before any work
    check_td_target(cfg.policy.learn)
    cfg.dqnkit.eval_lag = resolved_eval_lag(cfg)  # config.yaml records the lag the run used

    # A collector or evaluator node of a distributed run writes nothing: the learner's host holds the run folder.
    if writes_run_folder and resume_state is None:
        runs_dir = Path(options.runs_dir)
        _writable_dir(runs_dir)
        default_name = f"{main.get('exp_name') or Path(options.config or 'run').stem}_seed{seed}"
        run_dir = _new_run_dir(runs_dir, options.exp_name, default_name)
    elif writes_run_folder:
        _writable_dir(run_dir)
    cfg.exp_name = str(run_dir)
    return RunPlan(cfg, main, create, run_dir, resume_from, resume_state)


# ---------------------------------------------------------------------------------------------------------------
# The run folder's bookkeeping middleware.


class RunRecorder:
    """dqnkit's checkpoint saving, in place of DI-engine's CkptSaver.

    CkptSaver writes final.pth.tar only when task.finish was set by an earlier middleware (never on a step limit
    registered after it, nor on Ctrl-C), keeps every iteration_<N>.pth.tar (139 MB per LunarLander run), writes
    non-atomically and saves no counters or config. This recorder writes best/latest atomically with the counters,
    keeps a bounded number of periodic files, appends metrics.csv and drives the progress line; final.pth.tar is
    written by `finish`, which the driver calls on every kind of stop.
    """

    def __init__(self, plan: RunPlan, policy: Any, progress: ProgressLine, request_stop: Callable[[], None]) -> None:
        self.plan = plan
        self.cfg = plan.cfg
        self.policy = policy
        self.progress = progress
        self.run_dir = plan.run_dir
        self.config_plain = to_plain(plan.cfg)
        settings = plan.cfg.dqnkit
        self.save_freq = int(settings.save_freq)
        self.stop_value = float(plan.cfg.env.stop_value)
        self.stop_min_return = settings.stop_min_return
        self.request_stop = request_stop
        self.reached_stop = False
        self.keep_periodic = int(settings.keep_periodic)
        state = plan.resume_state or {}
        self.wall_offset = float(state.get("wall_seconds", 0.0))
        self.best_eval: float | None = state.get("best_eval")
        self.last_eval: dict[str, float] | None = state.get("last_eval")
        self.last_save_iter = int(state.get("train_iter", 0))
        self.last_eval_iter = int(state.get("last_eval_iter", -1))
        self.env_step = int(state.get("env_step", 0))
        self.train_iter = int(state.get("train_iter", 0))
        self.loss: float | None = None
        # Where this iteration's evaluation comes from: background_eval.BackgroundEvaluation in a single process,
        # distributed.RemoteEvaluations on the learner node of a distributed run.
        self.evaluations: Any = None
        self.started = time.monotonic()
        self.metrics_path = self.run_dir / "metrics.csv"
        for stale in self.run_dir.glob(".*.tmp"):  # left by a process killed mid-write (kill -9, power loss)
            stale.unlink(missing_ok=True)
        if not self.metrics_path.exists():
            with self._writing(self.metrics_path), open(self.metrics_path, "w", newline="") as f:
                csv.writer(f).writerow(METRICS_FIELDS)

    @property
    def wall_seconds(self) -> float:
        return self.wall_offset + time.monotonic() - self.started

    def _checkpoint(self, evaluated: dict[str, Any] | None) -> dict[str, Any]:
        state = self.policy.learn_mode.state_dict()
        env_step, train_iter = self.env_step, self.train_iter
        if evaluated is not None and "model" in evaluated:
            # The evaluator scored the weights of its iteration's start (a remote one: a little older): save those.
            state = {**state, "model": evaluated["model"]}
            env_step, train_iter = evaluated["env_step"], evaluated["train_iter"]
        return ckpt.build_checkpoint(
            state,
            env_step=env_step,
            train_iter=train_iter,
            config=self.config_plain,
            last_eval=self.last_eval,
            best_eval=self.best_eval,
            last_eval_iter=self.last_eval_iter,
            wall_seconds=self.wall_seconds,
        )

    @contextmanager
    def _writing(self, path: Path) -> Iterator[None]:
        """A full disk or a folder turned read-only stops training with one clear line."""
        try:
            yield
        except OSError as e:
            raise UserError(
                f"cannot write {path}: {e.strerror or e}; training stopped, the checkpoints already in "
                f"{self.run_dir} are intact (free space or fix permissions, then dqn-train --resume {self.run_dir})"
            ) from e

    def save(self, name: str, evaluated: dict[str, Any] | None = None) -> Path:
        path = self.run_dir / name
        with self._writing(path):
            ckpt.save_checkpoint(self._checkpoint(evaluated), path)
        return path

    def _save_periodic(self) -> None:
        self.save("latest.pth.tar")
        if self.keep_periodic <= 0:
            return
        self.save(f"iteration_{self.train_iter}.pth.tar")
        periodic = sorted(
            self.run_dir.glob("iteration_*.pth.tar"), key=lambda p: int(p.name.split("_")[1].split(".")[0])
        )
        for old in periodic[: -self.keep_periodic]:
            old.unlink(missing_ok=True)

    def _loss(self, train_output: Any) -> float | None:
        outputs = train_output if isinstance(train_output, list) else [train_output] if train_output else []
        losses = [float(o["total_loss"]) for o in outputs if isinstance(o, dict) and "total_loss" in o]
        return sum(losses) / len(losses) if losses else None

    def __call__(self, ctx: Any) -> None:
        self.env_step = int(ctx.env_step)
        self.train_iter = int(ctx.train_iter)
        loss = self._loss(ctx.train_output)
        if loss is not None:
            self.loss = loss
        # Finished by now (by the evaluator process or node), with its own counters and weights.
        evaluation = self.evaluations.current if self.evaluations is not None else None
        if evaluation is not None:
            self._record_evaluation(evaluation)
            if self._meets_stop_rule(evaluation):
                self.reached_stop = True
                self.request_stop()
        if self.train_iter - self.last_save_iter >= self.save_freq:
            self.last_save_iter = self.train_iter
            self._save_periodic()
        self.progress.update(
            self.env_step,
            self.train_iter,
            self.last_eval["mean"] if self.last_eval else None,
            self.best_eval,
            evaluation is not None,
        )

    def _record_evaluation(self, evaluation: dict[str, Any]) -> None:
        """A metrics row for it, and best.pth.tar if it is the best so far."""
        self.last_eval_iter = evaluation["train_iter"]
        self.last_eval = {k: evaluation[k] for k in ("mean", "std", "min", "max")}
        self._append_metrics(evaluation["env_step"], evaluation["train_iter"])
        if self.best_eval is None or self.last_eval["mean"] > self.best_eval:
            self.best_eval = self.last_eval["mean"]
            self.save("best.pth.tar", evaluated=evaluation)

    def _meets_stop_rule(self, evaluation: dict[str, Any]) -> bool:
        """DI-engine's rule (eval mean >= env.stop_value after some training), plus, when the config sets
        dqnkit.stop_min_return, every eval episode at or above it: a mean alone stops on lucky evaluations."""
        if evaluation["train_iter"] <= 0 or evaluation["mean"] < self.stop_value:
            return False
        return self.stop_min_return is None or evaluation["min"] >= float(self.stop_min_return)

    def _append_metrics(self, env_step: int, train_iter: int) -> None:
        assert self.last_eval is not None
        row = [
            env_step,
            train_iter,
            f"{self.wall_seconds:.3f}",
            f"{self.last_eval['mean']:.4f}",
            f"{self.last_eval['std']:.4f}",
            f"{self.last_eval['min']:.4f}",
            f"{self.last_eval['max']:.4f}",
            "" if self.loss is None else f"{self.loss:.6f}",
        ]
        with self._writing(self.metrics_path), open(self.metrics_path, "a", newline="") as f:
            csv.writer(f).writerow(row)

    def finish(self, stop_reason: str, signum: int | None, failure: Exception | None = None) -> dict[str, Any]:
        import torch

        self.progress.close()
        if stop_reason in ("max_env_steps", "max_train_iters", "finished") and hasattr(self.evaluations, "drain"):
            for evaluation in self.evaluations.drain():  # the last one, still under way when a step limit ended the run
                self._record_evaluation(evaluation)
        final = self.save("final.pth.tar")
        stop_value = float(self.cfg.env.stop_value)
        summary: dict[str, Any] = {
            "stop_reason": stop_reason,
            "env_id": self.cfg.env.env_id,
            "seed": int(self.cfg.seed),
            "env_steps": self.env_step,
            "train_iters": self.train_iter,
            "wall_seconds": round(self.wall_seconds, 3),
            "torch_threads": torch.get_num_threads(),  # wall_seconds depend on it
            "best_eval": self.best_eval,
            "last_eval": self.last_eval,
            "stop_value": stop_value if math.isfinite(stop_value) else None,
            "checkpoints": {
                name: str(self.run_dir / f"{name}.pth.tar")
                for name in ("best", "latest", "final")
                if (self.run_dir / f"{name}.pth.tar").exists()
            },
            "final_checkpoint": str(final),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": ckpt.versions(),
        }
        if signum is not None:
            summary["signal"] = signum
        if failure is not None:
            first_line = (str(failure).strip().splitlines() or [""])[0][:300]
            summary["failure"] = f"{type(failure).__name__}: {first_line}" if first_line else type(failure).__name__
        with self._writing(self.run_dir / "summary.json"):
            ckpt.atomic_write_bytes(self.run_dir / "summary.json", json.dumps(summary, indent=2).encode() + b"\n")
        if self.last_eval is not None:
            try:
                plot_runs(
                    [self.run_dir],
                    self.run_dir / "curve.png",
                    title=f"{self.cfg.env.env_id} ({self.run_dir.name})",
                )
            except (OSError, ValueError) as e:
                print(f"warning: could not draw curve.png: {e}", file=sys.stderr)
        return summary


# ---------------------------------------------------------------------------------------------------------------
# The DI-engine task.


def _write_run_files(plan: RunPlan, command: str) -> None:
    run_dir = plan.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    raw = {"main_config": to_plain(plan.main), "create_config": to_plain(plan.create)}
    (run_dir / RUN_CONFIG).write_text(yaml.safe_dump(raw, sort_keys=False))
    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_plain(plan.cfg), sort_keys=False))
    # DI-engine's save_config runs yapf over the file (2 s); this writes the same config, loadable by --config.
    (run_dir / "config.py").write_text(
        "# Compiled config of this run: dqn-train --config this_file retrains with exactly these settings.\n"
        "from easydict import EasyDict\n\ninf, nan = float('inf'), float('nan')\n\n"
        f"main_config = EasyDict({pprint.pformat(to_plain(plan.cfg), sort_dicts=False)})\n\n"
        f"create_config = EasyDict({pprint.pformat(to_plain(plan.create), sort_dicts=False)})\n"
    )
    with open(run_dir / "command.txt", "a") as f:
        f.write(command + "\n")


def _env_manager(cfg: Any, count: int) -> Any:
    from ding.envs import BaseEnvManagerV2, SubprocessEnvManagerV2

    manager_cls = SubprocessEnvManagerV2 if cfg.env.manager.type == "subprocess" else BaseEnvManagerV2
    env_fn = [partial(make_ding_env, cfg.env.env_id) for _ in range(count)]
    return launched_once(manager_cls)(env_fn=env_fn, cfg=cfg.env.manager)


def _seed_evaluator_env(cfg: Any, manager: Any) -> None:
    """interaction_evaluator seeds its envs with dynamic_seed=False: every evaluation replays the same
    evaluator_env_num start states, so "best" and the stop rule are tuned to a handful of episodes (a stock
    LunarLander run that stopped at 8-episode mean >= 200 scored 143 over 100 fresh episodes). Fresh, reproducible
    seeds per episode make each evaluation an honest estimate."""
    manager.seed(cfg.seed + EVAL_SEED_OFFSET, dynamic_seed=bool(cfg.dqnkit.fresh_eval_episodes))


def _skip_repeated_evaluation(evaluator: Any) -> Any:
    """interaction_evaluator evaluates again whenever train_iter has not moved since its last evaluation, which is
    every iteration until the buffer holds a batch (and the first after a resume). Its envs are seeded without
    dynamic seeds, so it replays the same episodes with the same policy: the same result, at the cost of a full
    evaluation (16 LunarLander episodes of up to 1,000 steps) each time."""

    def _evaluate(ctx: Any) -> Any:
        if ctx.last_eval_iter != -1 and ctx.train_iter == ctx.last_eval_iter:
            return None
        return evaluator(ctx)

    return _evaluate


def _guard_train_output(logger: Any) -> Any:
    """online_logger pops the newest output from ctx.train_output: it crashes on the empty list OffPolicyLearner
    leaves while the buffer holds less than a batch (always the case right after a resume), and the output it takes
    is missing afterwards (the recorder's mean loss; with prioritized replay, the fetcher that pops each update's
    priorities crashes on "pop from empty list"). The logger gets a copy."""

    def _log(ctx: Any) -> Any:
        outputs = ctx.train_output
        if isinstance(outputs, list):
            ctx.train_output = list(outputs) if outputs else None
        try:
            return logger(ctx)
        finally:
            ctx.train_output = outputs

    return _log


@contextmanager
def _signal_handlers(handlers: dict[signal.Signals, Any]) -> Iterator[None]:
    """Install these handlers for the duration of the block, then restore the previous ones."""
    previous = {s: signal.signal(s, h) for s, h in handlers.items()}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def _denormals_flushed() -> Iterator[None]:
    """Denormal floats flushed to zero in this thread for the duration, the previous setting restored afterwards.
    Adam's first moment of a dead ReLU unit's weights decays by 0.9 per update into the denormal range (a third of
    the LunarLander network's 512 x 64 layer's within 15k updates), and on some CPUs every denormal costs a microcode
    assist: on one, Adam's step took 2.4x as long in a run. Flushed, such values become the zeros they are decaying
    to (benchmarks/NOTES.md: the same weights bit for bit, ~9% less wall time over 24k env steps there)."""
    import torch

    # torch has no getter: a float64 denormal survives a tensor's creation only while flushing is off.
    was_flushing = bool(torch.tensor([1e-323], dtype=torch.float64).item() == 0.0)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was_flushing)


def _worker_signals() -> Any:
    """Env worker processes forked in here ignore Ctrl-C (which a terminal sends to the whole process group): the
    trainer alone decides how to stop and closes them after its final checkpoint. SIGTERM keeps its default, so
    `terminate()` still ends a worker; a worker whose trainer died exits when its pipe closes."""
    return _signal_handlers({signal.SIGINT: signal.SIG_IGN, signal.SIGTERM: signal.SIG_DFL})


def _close_env(manager: Any, name: str) -> None:
    try:
        manager.close()
    except (OSError, EOFError) as e:
        print(f"dqnkit: warning: {name} env workers did not close cleanly ({type(e).__name__})", file=sys.stderr)
    # SubprocessEnvManagerV2.close() returns early once the manager marked itself closed after a worker failure,
    # and stops at a dead worker's broken pipe; either way the other workers are left alive and would block
    # interpreter exit (multiprocessing joins its children).
    for process in getattr(manager, "_subprocesses", {}).values():
        if process.is_alive():
            process.terminate()
            process.join(timeout=2)
        if process.is_alive():
            process.kill()
            process.join(timeout=2)


class InterruptSignals:
    """SIGINT and SIGTERM raise Interrupted, so that training unwinds through the normal stop path, and are
    remembered: DI-engine's in-process env manager catches whatever an env step or reset raises (KeyboardInterrupt
    included) and raises a RuntimeError of its own instead, which must still end the run as interrupted."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._handlers = _signal_handlers({signal.SIGINT: self._raise, signal.SIGTERM: self._raise})

    def _raise(self, signum: int, _frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
        raise Interrupted(signum)

    def __enter__(self) -> InterruptSignals:
        self._handlers.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._handlers.__exit__(*exc_info)


def _stop_reason(cfg: Any, recorder: RunRecorder) -> str:
    limits = cfg.dqnkit
    if recorder.reached_stop:
        return "stop_value"
    if limits.max_env_steps is not None and recorder.env_step > limits.max_env_steps:
        return "max_env_steps"
    if limits.max_train_iters is not None and recorder.train_iter > limits.max_train_iters:
        return "max_train_iters"
    return "finished"


def train(options: TrainOptions) -> int:
    """Train in this process: every role of DI-engine's pipeline in one task. Returns the exit code."""
    return run_plan(options, plan_run(options))


def _fused_adam(optimizer: Any) -> None:
    """torch's fused CPU Adam kernel: one call for all parameters instead of ~10 small ops per tensor (0.23 ms ->
    0.07 ms per LunarLander update). DQNPolicy builds its Adam without the flag."""
    for group in optimizer.param_groups:
        group["fused"] = True


def _restore(plan: RunPlan, policy: Any, ctx: Any) -> None:
    """--resume: the learner's weights, target network, optimizer and counters (the epsilon schedule follows)."""
    state = plan.resume_state
    assert state is not None
    try:
        policy.learn_mode.load_state_dict({k: state[k] for k in ("model", "target_model", "optimizer")})
    except (RuntimeError, KeyError) as e:
        raise UserError(f"--resume {plan.resume_from}: weights do not fit the config's model ({e})") from e
    ctx.env_step = int(state["env_step"])
    ctx.train_iter = int(state["train_iter"])
    ctx.last_eval_iter = int(state.get("last_eval_iter", -1))


def _announce(plan: RunPlan, node: Node | None) -> None:
    cfg = plan.cfg
    if node is not None and node.role != "learner":
        print(f"dqnkit: {node.name} on {node.listen}, attached to {', '.join(node.attach_to) or '-'}", file=sys.stderr)
        return
    if plan.resume_state is not None and plan.resume_from is not None:
        what = (
            f"resuming {plan.run_dir} from {plan.resume_from.name} at env step "
            f"{plan.resume_state['env_step']}, train iter {plan.resume_state['train_iter']}"
        )
    else:
        what = f"training into {plan.run_dir}"
    where = f", {node.name} on {node.listen}" if node is not None else ""
    print(
        f"dqnkit: {what} ({cfg.env.env_id}, seed {cfg.seed}, {'cuda' if cfg.policy.cuda else 'cpu'}{where})",
        file=sys.stderr,
    )
    if plan.resume_from:
        print("dqnkit: the replay buffer starts empty on resume (it is not saved in checkpoints)", file=sys.stderr)


def run_plan(options: TrainOptions, plan: RunPlan, node: Node | None = None) -> int:
    """Run DI-engine's middleware pipeline for a planned run: all roles in this process (node None), or the one
    role of a node of a distributed run (dqnkit.distributed). Only the learner writes the run folder."""
    from dqnkit.quiet import import_ding_quietly, mute_ding_logging

    import_ding_quietly()
    cfg = plan.cfg
    role = node.role if node is not None else None
    learns, collects, evaluates = (role in (None, r) for r in ("learner", "collector", "evaluator"))

    import numpy as np
    import torch
    from ding.data import DequeBuffer
    from ding.data.buffer.middleware import PriorityExperienceReplay
    from ding.framework import ding_init, task
    from ding.framework.context import OnlineRLContext
    from ding.framework.middleware import (
        ModelExchanger,
        OffPolicyLearner,
        StepCollector,
        data_pusher,
        eps_greedy_handler,
        interaction_evaluator,
        online_logger,
        termination_checker,
    )
    from ding.model import DQN
    from ding.utils import DistributedWriter, set_pkg_seed

    from dqnkit import distributed
    from dqnkit.background_eval import BackgroundEvaluation
    from dqnkit.replay import ArrayReplayBuffer

    fast_tree_construction()
    fast_batch_collation()
    if learns:
        _write_run_files(plan, options.command)
        ding_init(cfg)
    mute_ding_logging()
    if not options.quiet:
        _announce(plan, node)
    progress = ProgressLine(quiet=options.quiet or not learns, max_env_steps=cfg.dqnkit.max_env_steps)

    stop_reason = "finished"
    signum: int | None = None
    failure: Exception | None = None
    summary: dict[str, Any] | None = None
    signals = InterruptSignals()
    with signals, task.start(async_mode=False, ctx=OnlineRLContext()):
        background = None
        if evaluates and node is None:  # first: the child is forked before this process builds anything
            background = BackgroundEvaluation(
                cfg,
                make_env=partial(_env_manager, cfg, cfg.env.evaluator_env_num),
                seed_env=partial(_seed_evaluator_env, cfg),
            )
        collector_env = _env_manager(cfg, cfg.env.collector_env_num) if collects else None
        evaluator_env = _env_manager(cfg, cfg.env.evaluator_env_num) if evaluates and node is not None else None
        try:
            # Collectors of a distributed run explore with seeds of their own; a single process uses cfg.seed.
            seed = int(cfg.seed) + (node.node_id * distributed.NODE_SEED_STRIDE if node is not None else 0)
            set_pkg_seed(seed, use_cuda=cfg.policy.cuda)
            model = DQN(**cfg.policy.model)
            policy = fast_dqn_policy()(cfg.policy, model=model)
            resume = plan.resume_state
            recorder = None
            if learns:
                if resume is not None:
                    _restore(plan, policy, task.ctx)
                # After _restore: loading an optimizer state replaces its param_groups, flags included.
                _fused_adam(policy._optimizer)
                recorder = RunRecorder(plan, policy, progress, request_stop=lambda: setattr(task, "finish", True))
            heartbeat = None
            if node is not None:
                task.add_role(getattr(task.role, node.role.upper()))
                heartbeat = distributed.LearnerHeartbeat(learns, float(cfg.dqnkit.worker_timeout))
                task.use(distributed.context_exchanger(heartbeat, int(resume["env_step"]) if resume else 0))
                task.use(ModelExchanger(model))

            if background is not None:  # interaction_evaluator, in the child process
                background.model = model
                task.use(background)
                if recorder is not None:
                    recorder.evaluations = background
            elif evaluator_env is not None:  # an evaluator node of a distributed run
                # The recorder applies the stop rule; the evaluator gets a copy that never stops by itself.
                eval_cfg = copy.deepcopy(cfg)
                eval_cfg.env.stop_value = math.inf
                task.use(_skip_repeated_evaluation(interaction_evaluator(eval_cfg, policy.eval_mode, evaluator_env)))
                _seed_evaluator_env(cfg, evaluator_env)
                task.use(distributed.send_evaluations(model))
            if collector_env is not None:
                collector_env.seed(seed)
                task.use(eps_greedy_handler(cfg))
                task.use(StepCollector(cfg, policy.collect_mode, collector_env))
                # DI-engine registers it on the learner too in parallel mode: n-step returns computed twice.
                task.use(nstep_reward_enhancer(cfg))
            if recorder is not None:
                buffer_size = int(cfg.policy.other.replay_buffer.replay_buffer_size)
                if cfg.policy.priority:
                    buffer_ = DequeBuffer(size=buffer_size)
                    buffer_.use(PriorityExperienceReplay(buffer_, IS_weight=bool(cfg.policy.priority_IS_weight)))
                else:
                    buffer_ = ArrayReplayBuffer(size=buffer_size)
                task.use(data_pusher(cfg, buffer_))
                task.use(OffPolicyLearner(cfg, policy.learn_mode, buffer_))
                if node is not None:
                    recorder.evaluations = distributed.RemoteEvaluations()
                    task.use(recorder.evaluations)
                task.use(_guard_train_output(online_logger(train_show_freq=int(cfg.dqnkit.log_freq))))
                task.use(recorder)
                task.use(termination_checker(cfg.dqnkit.max_env_steps, cfg.dqnkit.max_train_iters))
            if cfg.dqnkit.torch_threads is not None:  # checked by plan_run
                torch.set_num_threads(cfg.dqnkit.torch_threads)
            with _worker_signals():
                for manager in (collector_env, evaluator_env):
                    if manager is not None:
                        manager.launch()
            # DI-engine's env wrapper reseeds numpy's global generator with each env's own seed as it launches, so
            # epsilon-greedy and the collector's episode seeds drew from the stream of the last env's seed (six of six
            # LunarLander seeds happened to learn markedly slower with it: benchmarks/NOTES.md). A stream of its own.
            np.random.seed(np.random.SeedSequence([seed, COLLECTOR_STREAM]).generate_state(1)[0])
            try:
                if heartbeat is not None and node is not None:
                    heartbeat.start(node)
                # What exists now (DI-engine, torch, envs, model: ~540k objects) lives until the run ends; unfrozen,
                # every full garbage collection rescanned it (0.3 s each: 9% of a LunarLander run). Unfrozen again
                # below, so that a process training several times can still collect a finished run's cycles.
                gc.freeze()
                with _denormals_flushed():  # here only: the evaluator child and env workers compute as dqn-eval does
                    task.run()
                stop_reason = _stop_reason(cfg, recorder) if recorder is not None else "finished"
            except KeyboardInterrupt as e:  # Interrupted included
                stop_reason, signum = "interrupted", interrupting_signal(e)
            except UserError:
                raise  # storage failures: nothing more can be written
            except Exception as e:  # an env worker died, an env raised, a peer was lost: keep what was learned
                if signals.signum is not None:  # a signal DI-engine's env manager turned into its own error
                    stop_reason, signum = "interrupted", signals.signum
                else:
                    stop_reason, failure = "failed", e
            # Late signals must not cut the final checkpoint short.
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
                signal.signal(s, signal.SIG_IGN)
            if recorder is not None:
                summary = recorder.finish(stop_reason, signum, failure)
                DistributedWriter.get_instance().close()  # flush TensorBoard before a node process exits
            if heartbeat is not None and learns:
                distributed.announce_finish(heartbeat)
        finally:
            gc.unfreeze()
            if background is not None:
                background.close()
            for manager, name in ((collector_env, "collector"), (evaluator_env, "evaluator")):
                if manager is not None:
                    _close_env(manager, name)
    if summary is None:  # a collector or evaluator node: nothing of its own to report
        if failure is not None:
            raise TrainingFailed(f"{node.name if node else 'node'} stopped: {failure}") from failure
        return 128 + signum if signum is not None else 0
    _print_summary(summary, plan.run_dir)
    if failure is not None:
        raise TrainingFailed(
            f"training failed: {summary['failure']}; final.pth.tar and summary.json are in {plan.run_dir} "
            f"(continue with dqn-train --resume {plan.run_dir})"
        ) from failure
    return 128 + signum if signum is not None else 0


def _print_summary(summary: dict[str, Any], run_dir: Path) -> None:
    reason = {
        "stop_value": f"reached the stop value {summary['stop_value']}",
        "max_env_steps": "hit the env step limit",
        "max_train_iters": "hit the train iteration limit",
        "interrupted": "interrupted; resume with: dqn-train --resume " + shlex.quote(str(run_dir)),
        "finished": "finished",
        "failed": "stopped by a failure",
    }[summary["stop_reason"]]
    best = summary["best_eval"]
    print(
        f"dqnkit: {reason} after {summary['env_steps']:,} env steps, {summary['train_iters']:,} train iters, "
        f"{format_duration(summary['wall_seconds'])}; best eval {best if best is None else f'{best:.1f}'}; "
        f"checkpoints in {run_dir}",
        file=sys.stderr,
    )
