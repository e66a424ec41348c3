"""A signal at any moment of a command's life leaves every run folder consistent (issue 37): SIGINT (a terminal's
Ctrl-C, to the whole process group) and SIGTERM (a supervisor's, to the command alone) alternate over 30 moments
spread across each command's first seconds, from the interpreter's start-up (before dqnkit's handler exists) into
training. After each, the command has exited with 128 + the signal (or died of it, before its handler was there;
or, for a SIGINT while CPython itself starts, with CPython's fatal start-up error), no process of it is left, and
each run folder either does not exist or holds summary.json and a final checkpoint that loads, with the same
counters."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import BIN, CONFIGS, cli, start_in_session, wait_gone
from dqnkit.checkpoint import load_checkpoint

pytestmark = [pytest.mark.sweep, pytest.mark.timeout(900)]

MOMENTS = 30
CARTPOLE = ["--config", str(CONFIGS / "cartpole.py"), "--stop-value", "1e9"]


def _moments(span_s: float) -> list[tuple[float, int]]:
    """(seconds after the start, signal): 30 moments from 0 to span_s, the signals alternating."""
    signals = (signal.SIGINT, signal.SIGTERM)
    return [(span_s * i / (MOMENTS - 1), signals[i % 2]) for i in range(MOMENTS)]


def _span(command: list[str], cwd: Path, training: Callable[[], bool]) -> float:
    """How long the command takes on this machine, now, until `training` holds (its runs are training), times
    1.3: the moments then cover its whole start-up on a fast CPU or a slow one. The calibration run is stopped by
    SIGINT and its folders removed."""
    cwd.mkdir(exist_ok=True)
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    while not training():
        assert proc.poll() is None and time.monotonic() - started < 180, proc.communicate()[1]
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    shutil.rmtree(cwd)
    return 1.3 * elapsed


def _rows(metrics: Path) -> int:
    return len(metrics.read_text().splitlines()) - 1 if metrics.is_file() else 0


def _signal_at(command: list[str], cwd: Path, delay: float, sig: int) -> tuple[int, str]:
    """Start `command` in a session of its own, send `sig` after `delay` seconds (SIGINT to the group as a terminal
    does, SIGTERM to the command alone), and return its exit code and stderr once it and its children are gone."""
    proc = start_in_session(command, cwd)
    time.sleep(delay)
    if proc.poll() is None:
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    left = wait_gone(proc.pid, timeout=30)
    assert left == [], f"processes left after {signal.Signals(sig).name} at {delay:.2f} s: {left}\n{err}"
    return proc.returncode, err


def _moment(command: list[str], cwd: Path, delay: float, sig: int, folders: Callable[[], list[Path]]) -> str:
    """One moment: the exit code checked and every run folder `folders` finds afterwards; returns stderr."""
    code, err = _signal_at(command, cwd, delay, sig)
    moment = f"{signal.Signals(sig).name} at {delay:.2f} s"
    _assert_exit(code, sig, err, moment)
    for folder in folders():
        _assert_consistent(folder, code, sig, err, f"{folder.name}, {moment}")
    return err


def _assert_consistent(run: Path, code: int, sig: int, err: str, moment: str) -> None:
    if not run.exists():
        return
    summary_path = run / "summary.json"
    assert summary_path.is_file(), f"{run} has no summary.json ({moment}, exit {code})\n{err}"
    summary = json.loads(summary_path.read_text())
    final = load_checkpoint(run / "final.pth.tar")  # checksummed: a torn file fails here
    assert (final["env_step"], final["train_iter"]) == (summary["env_steps"], summary["train_iters"]), moment
    if summary["stop_reason"] == "interrupted":
        assert summary["signal"] in (signal.SIGINT, signal.SIGTERM), moment


INTERPRETER_START = "Fatal Python error: init_import_site"  # CPython's own end for a Ctrl-C while it starts


def _assert_exit(code: int, sig: int, err: str, moment: str) -> None:
    """128 + the signal, without a traceback; or, before dqnkit's handler exists, death by the signal itself or,
    for a SIGINT in the interpreter's first milliseconds, CPython's fatal start-up error (exit 1)."""
    if code == 1 and sig == signal.SIGINT and INTERPRETER_START in err:
        return
    assert code in (128 + sig, -sig), f"exit {code} ({moment})\n{err}"
    if code == 128 + sig:
        assert "Traceback" not in err, f"{moment}\n{err}"


def _sweep(span_s: float, run_once: Callable[[int, float, int], bool]) -> None:
    """Two moments at a time (2 cores): each call gets its index, delay and signal, and says whether a run folder
    existed after it. The moments must have reached both sides of the folder's creation."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(run_once, i, delay, sig) for i, (delay, sig) in enumerate(_moments(span_s))]
        folders = [future.result() for future in futures]
    assert any(folders) and not all(folders), f"run folders after each moment: {folders}"


def test_dqn_train_resume_at_30_moments(tmp_path: Path) -> None:
    first = cli("dqn-train", *CARTPOLE, "--exp-name", "r", "--max-train-iters", "150", "--quiet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = load_checkpoint(tmp_path / "runs" / "r" / "final.pth.tar")
    rows = _rows(tmp_path / "runs/r/metrics.csv")

    def resume(run: Path) -> list[str]:
        shutil.copytree(tmp_path / "runs" / "r", run)
        return [str(BIN / "dqn-train"), "--resume", str(run), "--max-train-iters", "100000"]

    calibration = tmp_path / "calibration"
    span = _span(resume(calibration / "r"), calibration, lambda: _rows(calibration / "r/metrics.csv") > rows)

    def run_once(i: int, delay: float, sig: int) -> bool:
        run = tmp_path / f"copy{i}"
        err = _moment(resume(run), tmp_path, delay, sig, lambda: [run])
        assert load_checkpoint(run / "final.pth.tar")["train_iter"] >= before["train_iter"]
        return "resuming" in err  # the folder always exists: whether the resume got as far as starting

    _sweep(span, run_once)


SEEDS = ["--seeds", "0-1", "--parallel", "2", "--exp-name", "s"]
TUNE = ["--config", str(CONFIGS / "cartpole.py"), "--seeds", "2", "--trials", "1", "--max-env-steps", "3000"]


@pytest.mark.parametrize(
    ("command", "folders", "training"),
    [
        (["dqn-train", *CARTPOLE, "--exp-name", "r"], "runs/r", 1),
        (["dqn-train", *CARTPOLE, *SEEDS], "runs/s_seed*", 2),
        (["dqn-tune", *TUNE], "studies/*/trials/*/seed*", 1),
    ],
    ids=["dqn-train", "dqn-train --seeds", "dqn-tune"],
)
def test_a_command_at_30_moments(tmp_path: Path, command: list[str], folders: str, training: int) -> None:
    """`folders`: where the command's run folders go; `training`: how many of them train once it is under way."""
    command = [str(BIN / command[0]), *command[1:]]

    def under_way(cwd: Path) -> bool:
        return sum(_rows(folder / "metrics.csv") > 0 for folder in cwd.glob(folders)) >= training

    calibration = tmp_path / "calibration"
    span = _span(command, calibration, lambda: under_way(calibration))

    def run_once(i: int, delay: float, sig: int) -> bool:
        cwd = tmp_path / f"m{i}"
        cwd.mkdir()
        _moment(command, cwd, delay, sig, lambda: sorted(cwd.glob(folders)))
        return bool(list(cwd.glob(folders)))

    _sweep(span, run_once)
