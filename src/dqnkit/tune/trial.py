"""One trial: the sampled configuration trained on every seed (real `dqn-train` processes, `jobs` at a time), its
evaluation curves reported to Optuna as they grow, and every seed stopped as soon as Optuna prunes the trial."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna

from dqnkit.train.seeds import SeedRun, outcome, start, stop_runs
from dqnkit.tune.objective import Curve, intermediate, report_steps


def curve_of(run: SeedRun) -> Curve:
    ended = run.returncode is not None
    rows = run.metrics()
    return Curve(tuple(int(r["env_step"]) for r in rows), tuple(r["eval_mean"] for r in rows), ended)


@dataclass
class Reporter:
    """Reports the seeds' median curve at fixed env steps; raises TrialPruned when Optuna says so."""

    trial: optuna.Trial
    objective: str
    stop_value: float
    budget: int
    next_point: int = 0

    def __call__(self, runs: list[SeedRun]) -> None:
        points = report_steps(self.budget)
        curves = [curve_of(run) for run in runs]
        while self.next_point < len(points):
            step = points[self.next_point]
            value = intermediate(self.objective, curves, step, self.stop_value)
            if value is None:
                return
            self.trial.report(value, step)
            self.next_point += 1
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at {step:,} env steps")


def run_seeds(
    runs: list[SeedRun],
    child_args: list[str],
    jobs: int,
    check: Callable[[list[SeedRun]], None],
    show: Callable[[str], None],
) -> None:
    """Train every run, `jobs` at a time, calling `check` on the started runs every second. Whatever stops this early
    (pruning, Ctrl-C) stops the runs still going: each saves its final checkpoint and summary before it exits."""
    waiting = list(runs)
    started: list[SeedRun] = []
    try:
        while waiting or any(run.returncode is None for run in started):
            while waiting and sum(run.returncode is None for run in started) < jobs:
                run = waiting.pop(0)
                start(run, child_args)
                started.append(run)
            time.sleep(1.0)
            for run in started:
                if run.returncode is None and run.process is not None and run.process.poll() is not None:
                    run.returncode = run.process.returncode
                    show(f"seed {run.seed} {outcome(run)}")
            check(started)
    except BaseException:
        stop_runs(started)
        raise


def seed_runs(trial_dir: Path, seeds: list[int]) -> list[SeedRun]:
    return [SeedRun(seed, trial_dir / f"seed{seed}") for seed in seeds]


def status_line(runs: list[SeedRun]) -> str:
    return " | ".join(run.status() for run in runs if run.process is not None and run.returncode is None)


def failure(runs: list[SeedRun]) -> str | None:
    """The first seed that ended without a summary or with an error exit: what it said last."""
    for run in runs:
        if run.summary() is None or (run.returncode not in (0, None)):
            return f"seed {run.seed}: {run.last_message() or f'exit code {run.returncode}'}"
    return None
