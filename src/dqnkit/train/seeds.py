"""Several seeds of one config (`dqn-train --seeds`): each a `dqn-train --seed S` process into its own sibling run
folder, `parallel` at a time, one display for the set, and a table of the outcomes with their median and
interquartile mean (the mean of the middle half: steadier than the mean, less wasteful than the median)."""

from __future__ import annotations

import contextlib
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dqnkit import runfolder, signals
from dqnkit.aggregate import interquartile_mean
from dqnkit.errors import UserError, interrupting_signal
from dqnkit.progress import clear_line, format_duration, redraw
from dqnkit.validate import writable_dir

COLUMNS = ("seed", "stop_reason", "env_steps", "wall_seconds", "best_eval")
STOP_WAIT_S = 60.0  # a run asked to stop saves its final checkpoint first


@dataclass
class SeedRun:
    seed: int
    run_dir: Path
    process: subprocess.Popen[bytes] | None = None
    returncode: int | None = None
    stderr: Any = None  # a temporary file: the run's own messages, shown only when it fails
    _rows: list[dict[str, float]] = field(default_factory=list, repr=False)
    _read_stamp: tuple[int, int] = (0, -1)

    def metrics(self) -> list[dict[str, float]]:
        """metrics.csv's rows so far, read again only when the file changed ([] before it exists; while a row is
        being written, the last complete reading)."""
        try:
            stat = (self.run_dir / runfolder.METRICS).stat()
        except FileNotFoundError:
            return []
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._read_stamp:
            try:
                self._rows = runfolder.read_metrics(self.run_dir)
            except UserError:  # a row half written this very moment
                return self._rows
            self._read_stamp = stamp
        return self._rows

    def last_message(self) -> str:
        if self.stderr is None:
            return ""
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr.read().decode(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def summary(self) -> dict[str, Any] | None:
        path = self.run_dir / runfolder.SUMMARY
        return json.loads(path.read_text()) if path.is_file() else None

    def status(self) -> str:
        rows = self.metrics()
        if not rows:
            return f"seed {self.seed}: starting"
        last = rows[-1]
        return f"seed {self.seed}: {int(last['env_step']):,} steps, eval {float(last['eval_mean']):.1f}"


def train_seeds(child_args: list[str], seeds: list[int], parallel: int, runs_dir: Path, base_name: str) -> int:
    """Run `dqn-train *child_args --seed S --exp-name <base_name>_seed<S>` for every seed; returns the exit code
    (the first failure's, 130 on Ctrl-C)."""
    runfolder.require_plain_name(base_name, "--exp-name")
    writable_dir(runs_dir, "--runs-dir")
    runs = [SeedRun(seed, runs_dir / f"{base_name}_seed{seed}") for seed in seeds]
    taken = [r.run_dir for r in runs if r.run_dir.exists() and any(r.run_dir.iterdir())]
    if taken:
        raise UserError(f"{taken[0]} already holds a run; pass --exp-name to name this set of seeds differently")
    print(f"dqnkit: {len(runs)} seeds into {runs_dir}/{base_name}_seed<S>, {parallel} at a time", file=sys.stderr)
    signum = None
    try:
        _run_all(runs, child_args, parallel)
    except KeyboardInterrupt as e:
        signum = interrupting_signal(e)
        stop_runs(runs)
    table = summary_table(runs)
    print(table)
    (runs_dir / f"{base_name}.seeds.md").write_text(table + "\n")
    if signum is not None:
        return 128 + signum
    return next((r.returncode for r in runs if r.returncode), 0) or 0


def stop_runs(runs: list[SeedRun], wait_s: float = STOP_WAIT_S) -> None:
    """SIGINT to every run still going, then wait for each to save its final checkpoint and summary. A terminal's
    Ctrl-C reached them already; a SIGTERM to this process alone did not. A second SIGINT changes nothing for a run
    already stopping."""
    going = [run for run in runs if run.returncode is None and run.process is not None]
    for run in going:
        assert run.process is not None
        with contextlib.suppress(ProcessLookupError):
            run.process.send_signal(signal.SIGINT)
    for run in going:
        assert run.process is not None
        try:
            run.returncode = run.process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            run.process.kill()
            run.returncode = run.process.wait()


def start(run: SeedRun, child_args: list[str]) -> None:
    """`dqn-train *child_args --seed S --exp-name <run folder name> --quiet` in a process of its own."""
    args = [*child_args, "--seed", str(run.seed), "--exp-name", run.run_dir.name, "--quiet"]
    run.stderr = tempfile.TemporaryFile()  # noqa: SIM115  # lives as long as the run; closed by the OS at exit
    command = [sys.executable, "-m", "dqnkit.cli.train", *args]
    with signals.held():  # an interrupt now must find the run's process known, to stop it
        run.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=run.stderr)


def _run_all(runs: list[SeedRun], child_args: list[str], parallel: int) -> None:
    waiting = list(runs)
    running: list[SeedRun] = []
    live = sys.stderr.isatty()
    while waiting or running:
        while waiting and len(running) < parallel:
            run = waiting.pop(0)
            start(run, child_args)
            running.append(run)
        time.sleep(1.0)
        for run in list(running):
            assert run.process is not None
            if run.process.poll() is not None:
                run.returncode = run.process.returncode
                running.remove(run)
                if live:
                    clear_line()
                print(f"dqnkit: seed {run.seed} {outcome(run)}", file=sys.stderr)
        if live and running:
            done = len(runs) - len(waiting) - len(running)
            line = f"seeds done {done}/{len(runs)} | " + " | ".join(r.status() for r in running)
            redraw(line)
    if live:
        clear_line()


def outcome(run: SeedRun) -> str:
    summary = run.summary()
    if summary is None:
        return f"failed (exit {run.returncode}): {run.last_message()}"
    if run.returncode:
        return f"{summary['stop_reason']} (exit {run.returncode}): {run.last_message()}"
    return (
        f"{summary['stop_reason']} after {summary['env_steps']:,} env steps, "
        f"{format_duration(summary['wall_seconds'])}; best eval {_number(summary.get('best_eval'))}"
    )


def _iqm(values: list[float]) -> float:
    return float(interquartile_mean(np.asarray(values)))


def _number(value: Any, digits: int = 1) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else "-"


def summary_table(runs: list[SeedRun]) -> str:
    """Per seed its outcome, then the median and the interquartile mean of each number over the seeds that wrote a
    summary."""
    lines = ["| seed | stop reason | env steps | wall s | best eval |", "| ---: | --- | ---: | ---: | ---: |"]
    rows = []
    for run in runs:
        s = run.summary()
        if s is None:
            lines.append(f"| {run.seed} | no summary (exit {run.returncode}) | - | - | - |")
            continue
        rows.append(s)
        lines.append(
            f"| {run.seed} | {s['stop_reason']} | {s['env_steps']:,} | {_number(s['wall_seconds'], 0)} | "
            f"{_number(s.get('best_eval'))} |"
        )
    for name, statistic in (("median", statistics.median), ("IQM", _iqm)):
        cells = []
        for key, digits in (("env_steps", 0), ("wall_seconds", 0), ("best_eval", 1)):
            values = [float(s[key]) for s in rows if isinstance(s.get(key), int | float)]
            cells.append(_number(statistic(values), digits) if values else "-")
        lines.append(f"| {name} | | {' | '.join(cells)} |")
    return "\n".join(lines)
