"""dqn-train's progress line, driven by a simulated clock: what a user reads while a run trains."""

from __future__ import annotations

import io
import re

from dqnkit.progress import ProgressLine


def _simulated_run(progress: ProgressLine, clock: list[float], seconds: int) -> None:
    """1,000 env steps/s of collection and training, with a 1 s evaluation in every 5 s (800 env steps/s overall);
    the recorder calls update() ten times a second and once more when an evaluation finishes."""
    env_step = 0
    for second in range(seconds):
        evaluating = second % 5 == 4
        for tick in range(10):
            clock[0] = second + tick / 10
            if not evaluating:
                env_step += 100
            progress.update(env_step, env_step // 2, 0.0, 0.0, evaluated=evaluating and tick == 9)


def test_rate_and_eta_hold_steady_through_evaluations() -> None:
    stream, clock = io.StringIO(), [0.0]
    progress = ProgressLine(quiet=False, max_env_steps=400_000, stream=stream, clock=lambda: clock[0])
    _simulated_run(progress, clock, seconds=120)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 24  # a line per evaluation on a pipe, nothing in between
    rates = [int(re.search(r"([\d,]+) steps/s", line)[1].replace(",", "")) for line in lines]  # type: ignore[index]
    settled = rates[6:]  # once the rate window spans several evaluations
    assert all(720 <= rate <= 880 for rate in settled), rates
    last = lines[-1]
    assert "env steps 96,000 | iters 48,000" in last
    minutes, secs = map(int, re.search(r"24% ETA (\d+):(\d\d)", last).groups())  # type: ignore[union-attr]
    assert abs(minutes * 60 + secs - (400_000 - 96_000) / 800) < 40, last


def test_quiet_prints_nothing() -> None:
    stream, clock = io.StringIO(), [0.0]
    _simulated_run(ProgressLine(quiet=True, max_env_steps=None, stream=stream, clock=lambda: clock[0]), clock, 20)
    assert stream.getvalue() == ""


def test_without_a_step_limit_there_is_no_eta() -> None:
    stream, clock = io.StringIO(), [0.0]
    _simulated_run(ProgressLine(quiet=False, max_env_steps=None, stream=stream, clock=lambda: clock[0]), clock, 20)
    lines = stream.getvalue().splitlines()
    assert lines and all("ETA" not in line and "steps/s" in line for line in lines)
