"""The run's bookkeeping, in place of DI-engine's CkptSaver: what to save and when, the stop rule, metrics.csv,
summary.json and the progress line. Everything it writes goes through dqnkit.runfolder and dqnkit.checkpoint.

CkptSaver writes final.pth.tar only when task.finish was set by an earlier middleware (never on a step limit
registered after it, nor on Ctrl-C), keeps every iteration_<N>.pth.tar, writes non-atomically and saves no counters
or config. The recorder writes best/latest atomically with the counters, keeps a bounded number of periodic files,
and writes final.pth.tar in `finish`, which the pipeline calls on every kind of stop.
"""

from __future__ import annotations

import math
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import torch

from dqnkit import checkpoint as ckpt
from dqnkit import rngstate, runfolder
from dqnkit.config import to_plain
from dqnkit.envguard import env_failure
from dqnkit.errors import UserError
from dqnkit.files import remove_partial_writes
from dqnkit.plotting import plot_runs
from dqnkit.progress import ProgressLine, format_duration
from dqnkit.train.plan import RunPlan

STOP_REASONS = {
    "stop_value": "reached the stop value {stop_value}",
    "max_env_steps": "hit the env step limit",
    "max_train_iters": "hit the train iteration limit",
    "interrupted": "interrupted; resume with: dqn-train --resume {run_dir}",
    "finished": "finished",
    "failed": "stopped by a failure",
}


@dataclass
class Evaluation:
    """One evaluation of the learner's weights: the counters they were taken at, interaction_evaluator's
    statistics of the episodes' returns, and the weights themselves (what best.pth.tar saves)."""

    env_step: int
    train_iter: int
    mean: float
    std: float
    min: float
    max: float
    model: dict[str, torch.Tensor]

    def stats(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max}

    def put_in(self, ctx: Any) -> None:
        """Into DI-engine's context as interaction_evaluator leaves it (for online_logger's TensorBoard curve)."""
        ctx.eval_value, ctx.eval_value_std = self.mean, self.std
        ctx.eval_value_min, ctx.eval_value_max = self.min, self.max


class Evaluations(Protocol):
    """Where the recorder finds this iteration's evaluation: background_eval in one process, the evaluator node's
    results on the learner node of a distributed run."""

    current: Evaluation | None

    def drain(self) -> list[Evaluation]:
        """The evaluations still under way, once finished (a run ended by a step limit keeps its last one)."""
        ...


@dataclass(frozen=True)
class StopRule:
    """DI-engine's rule (eval mean >= env.stop_value after some training), plus, when the config sets
    dqnkit.stop_min_return, every eval episode at or above it: a mean alone stops on lucky evaluations."""

    stop_value: float
    min_return: float | None = None

    def met_by(self, evaluation: Evaluation) -> bool:
        if evaluation.train_iter <= 0 or evaluation.mean < self.stop_value:
            return False
        return self.min_return is None or evaluation.min >= self.min_return


def stop_reason(settings: Any, reached_stop: bool, env_step: int, train_iter: int) -> str:
    """Why a run that ended without an interrupt or a failure ended (settings: the config's dqnkit section)."""
    if reached_stop:
        return "stop_value"
    if settings.max_env_steps is not None and env_step > settings.max_env_steps:
        return "max_env_steps"
    if settings.max_train_iters is not None and train_iter > settings.max_train_iters:
        return "max_train_iters"
    return "finished"


def _mean_loss(train_output: Any) -> float | None:
    outputs = train_output if isinstance(train_output, list) else [train_output] if train_output else []
    losses = [float(o["total_loss"]) for o in outputs if isinstance(o, dict) and "total_loss" in o]
    return sum(losses) / len(losses) if losses else None


class RunRecorder:
    """Middleware after the learner; `evaluations` is set by the pipeline once it knows where they come from."""

    def __init__(self, plan: RunPlan, policy: Any, progress: ProgressLine, request_stop: Callable[[], None]) -> None:
        self.cfg = plan.cfg
        self.policy = policy
        self.progress = progress
        self.run_dir = plan.run_dir
        self.config_plain = to_plain(plan.cfg)
        settings = plan.cfg.dqnkit
        self.save_freq = int(settings.save_freq)
        self.keep_periodic = int(settings.keep_periodic)
        min_return = settings.stop_min_return
        self.stop_rule = StopRule(float(plan.cfg.env.stop_value), None if min_return is None else float(min_return))
        self.request_stop = request_stop
        self.reached_stop = False
        state = plan.resume_state or {}
        self.wall_offset = float(state.get("wall_seconds", 0.0))
        self.best_eval: float | None = state.get("best_eval")
        self.last_eval: dict[str, float] | None = state.get("last_eval")
        self.last_save_iter = int(state.get("train_iter", 0))
        self.last_eval_iter = int(state.get("last_eval_iter", -1))
        self.env_step = int(state.get("env_step", 0))
        self.train_iter = int(state.get("train_iter", 0))
        self.loss: float | None = None
        self.evaluations: Evaluations | None = None
        self.replay: Any = None  # the buffer saved beside final.pth.tar (dqnkit.save_replay)
        self.started = time.monotonic()
        remove_partial_writes(self.run_dir)
        with self._writing(self.run_dir / runfolder.METRICS):
            runfolder.start_metrics(self.run_dir)

    @property
    def wall_seconds(self) -> float:
        return self.wall_offset + time.monotonic() - self.started

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

    def _checkpoint(self, evaluated: Evaluation | None) -> dict[str, Any]:
        state = self.policy.learn_mode.state_dict()
        env_step, train_iter = self.env_step, self.train_iter
        if evaluated is not None:
            # The evaluator scored the weights of its iteration's start (a remote one: a little older): save those.
            state = {**state, "model": evaluated.model}
            env_step, train_iter = evaluated.env_step, evaluated.train_iter
        return ckpt.build_checkpoint(
            state,
            env_step=env_step,
            train_iter=train_iter,
            config=self.config_plain,
            last_eval=self.last_eval,
            best_eval=self.best_eval,
            last_eval_iter=self.last_eval_iter,
            wall_seconds=self.wall_seconds,
            random_state=rngstate.capture(),
        )

    def save(self, name: str, evaluated: Evaluation | None = None) -> Path:
        path = self.run_dir / name
        with self._writing(path):
            ckpt.save_checkpoint(self._checkpoint(evaluated), path)
        return path

    def _save_periodic(self) -> None:
        self.save(runfolder.LATEST)
        if self.keep_periodic <= 0:
            return
        self.save(runfolder.periodic_name(self.train_iter))
        for old in runfolder.periodic_checkpoints(self.run_dir)[: -self.keep_periodic]:
            old.unlink(missing_ok=True)

    def __call__(self, ctx: Any) -> None:
        self.env_step = int(ctx.env_step)
        self.train_iter = int(ctx.train_iter)
        loss = _mean_loss(ctx.train_output)
        if loss is not None:
            self.loss = loss
        # Finished by now (by the evaluator process or node), with its own counters and weights.
        evaluation = self.evaluations.current if self.evaluations is not None else None
        if evaluation is not None:
            self._record_evaluation(evaluation)
            if self.stop_rule.met_by(evaluation):
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

    def _record_evaluation(self, evaluation: Evaluation) -> None:
        """A metrics row for it, and best.pth.tar if it is the best so far."""
        self.last_eval_iter = evaluation.train_iter
        self.last_eval = evaluation.stats()
        row = runfolder.MetricsRow(
            evaluation.env_step,
            evaluation.train_iter,
            self.wall_seconds,
            evaluation.mean,
            evaluation.std,
            evaluation.min,
            evaluation.max,
            self.loss,
        )
        with self._writing(self.run_dir / runfolder.METRICS):
            runfolder.append_metrics(self.run_dir, row)
        if self.best_eval is None or evaluation.mean > self.best_eval:
            self.best_eval = evaluation.mean
            self.save(runfolder.BEST, evaluated=evaluation)

    def keep_replay(self, buffer: Any, save: bool, resume_from: Path | None) -> None:
        """Save `buffer` beside final.pth.tar (when `save`); on --resume, refill it from the one saved with the
        checkpoint resumed, saying so either way."""
        self.replay = buffer if save else None
        if resume_from is None:
            return
        note = self._refill(buffer, runfolder.replay_path(resume_from), resume_from)
        if not self.progress.quiet:
            print(f"dqnkit: {note}", file=sys.stderr)

    def _refill(self, buffer: Any, path: Path, resume_from: Path) -> str:
        if not path.is_file():
            return f"the replay buffer starts empty (no {path.name} was saved with {resume_from.name})"
        saved = ckpt.load_replay(path)
        if int(saved["env_step"]) != self.env_step:
            saved_at = f"env step {saved['env_step']:,}, not {self.env_step:,}"
            return f"the replay buffer starts empty ({path.name} is from {saved_at})"
        try:
            buffer.load_state_dict(saved["buffer"])
        except (ValueError, KeyError, TypeError) as e:
            return f"the replay buffer starts empty ({path.name} does not fit this config's buffer: {e})"
        return f"refilled the replay buffer with {buffer.count():,} transitions from {path.name}"

    def stop_reason(self) -> str:
        return stop_reason(self.cfg.dqnkit, self.reached_stop, self.env_step, self.train_iter)

    def finish(self, reason: str, signum: int | None, failure: Exception | None = None) -> dict[str, Any]:
        """final.pth.tar, summary.json and curve.png, on every kind of stop; returns the summary."""
        self.progress.close()
        if reason in ("max_env_steps", "max_train_iters", "finished") and self.evaluations is not None:
            for evaluation in self.evaluations.drain():
                self._record_evaluation(evaluation)
        final = self.save(runfolder.FINAL)
        if self.replay is not None:
            replay = ckpt.build_replay(self.replay.state_dict(), env_step=self.env_step, train_iter=self.train_iter)
            with self._writing(runfolder.replay_path(final)):
                ckpt.save_checkpoint(replay, runfolder.replay_path(final))
        summary = self._summary(reason, final, signum, failure)
        with self._writing(self.run_dir / runfolder.SUMMARY):
            runfolder.write_summary(self.run_dir, summary)
        if self.last_eval is not None:
            try:
                title = f"{self.cfg.env.env_id} ({self.run_dir.name})"
                plot_runs([self.run_dir], self.run_dir / runfolder.CURVE, title=title)
            except (OSError, ValueError) as e:
                print(f"warning: could not draw {runfolder.CURVE}: {e}", file=sys.stderr)
        return summary

    def _summary(self, reason: str, final: Path, signum: int | None, failure: Exception | None) -> dict[str, Any]:
        stop_value = float(self.cfg.env.stop_value)
        summary: dict[str, Any] = {
            "stop_reason": reason,
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
                name.split(".")[0]: str(self.run_dir / name)
                for name in (runfolder.BEST, runfolder.LATEST, runfolder.FINAL)
                if (self.run_dir / name).exists()
            },
            "final_checkpoint": str(final),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": ckpt.versions(),
        }
        if signum is not None:
            summary["signal"] = signum
        if failure is not None:
            summary["failure"] = failure_line(failure)
        return summary


def failure_line(failure: BaseException) -> str:
    """What stopped a run, on one line: a user env's failure as the env guard wrote it, else the exception's type
    and its first line."""
    env = env_failure(failure)
    if env is not None:
        return env.line
    first_line = (str(failure).strip().splitlines() or [""])[0][:300]
    return f"{type(failure).__name__}: {first_line}" if first_line else type(failure).__name__


def print_summary(summary: dict[str, Any], run_dir: Path) -> None:
    """The one line dqn-train ends with."""
    reason = STOP_REASONS[summary["stop_reason"]].format(
        stop_value=summary["stop_value"], run_dir=shlex.quote(str(run_dir))
    )
    best = summary["best_eval"]
    print(
        f"dqnkit: {reason} after {summary['env_steps']:,} env steps, {summary['train_iters']:,} train iters, "
        f"{format_duration(summary['wall_seconds'])}; best eval {best if best is None else f'{best:.1f}'}; "
        f"checkpoints in {run_dir}",
        file=sys.stderr,
    )
