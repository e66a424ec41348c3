"""One live progress line for training (DI-engine's multi-line tables stay off)."""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

# Steps per second (and the ETA) over this many recent seconds: long enough to average over the pauses around
# evaluations (waiting for a late one, writing best.pth.tar), short enough to follow a run that speeds up as
# episodes shorten.
RATE_WINDOW_SECONDS = 30.0


CLEAR_LINE = "\r\033[K"  # back to the line's start, erase it


def redraw(text: str, width: int = 220) -> None:
    """On a terminal: replace the live status line with `text`, cut to `width` so that it never wraps."""
    print(f"{CLEAR_LINE}{text[:width]}", end="", file=sys.stderr, flush=True)


def clear_line() -> None:
    print(CLEAR_LINE, end="", file=sys.stderr, flush=True)


def print_line(text: str) -> None:
    """A line of its own; on a terminal it replaces the live status line first."""
    print(f"{CLEAR_LINE}{text}" if sys.stderr.isatty() else text, file=sys.stderr, flush=True)


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressLine:
    """Redraws one line on a terminal; on a pipe or file prints a line per evaluation instead."""

    def __init__(
        self,
        *,
        quiet: bool,
        max_env_steps: int | None,
        stream: TextIO = sys.stderr,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quiet = quiet
        self.max_env_steps = max_env_steps
        self.stream = stream
        self.clock = clock
        self.live = stream.isatty()
        self._last_draw = 0.0
        self._width = 0
        self._marks: deque[tuple[float, int]] = deque()  # (time, env step), one per second at most

    def _steps_per_second(self, now: float, env_step: int) -> float:
        if not self._marks or now - self._marks[-1][0] >= 1.0:
            self._marks.append((now, env_step))
        while len(self._marks) > 2 and now - self._marks[1][0] >= RATE_WINDOW_SECONDS:
            self._marks.popleft()
        then, steps = self._marks[0]
        return (env_step - steps) / (now - then) if now - then >= 2.0 else 0.0

    def update(
        self, env_step: int, train_iter: int, last_eval: float | None, best: float | None, evaluated: bool
    ) -> None:
        if self.quiet:
            return
        now = self.clock()
        rate = self._steps_per_second(now, env_step)
        if not evaluated and (not self.live or now - self._last_draw < 0.25):
            return
        self._last_draw = now
        parts = [
            f"env steps {env_step:,}",
            f"iters {train_iter:,}",
            f"{rate:,.0f} steps/s" if rate else "- steps/s",
        ]
        parts.append(f"eval {last_eval:.1f}" if last_eval is not None else "eval -")
        parts.append(f"best {best:.1f}" if best is not None else "best -")
        if self.max_env_steps:
            done = min(env_step / self.max_env_steps, 1.0)
            eta = (self.max_env_steps - env_step) / rate if rate > 0 else math.inf
            parts.append(f"{done:.0%} ETA {format_duration(eta)}")
        line = " | ".join(parts)
        if self.live:
            pad = max(self._width - len(line), 0)
            self._width = len(line)
            self.stream.write("\r" + line + " " * pad)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live and not self.quiet and self._width:
            self.stream.write("\n")
            self.stream.flush()
