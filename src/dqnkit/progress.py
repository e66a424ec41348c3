"""One live progress line for training (DI-engine's multi-line tables stay off)."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressLine:
    """Redraws one line on a terminal; on a pipe or file prints a line per evaluation instead."""

    def __init__(self, *, quiet: bool, max_env_steps: int | None, stream: TextIO = sys.stderr) -> None:
        self.quiet = quiet
        self.max_env_steps = max_env_steps
        self.stream = stream
        self.live = stream.isatty()
        self._last_draw = 0.0
        self._width = 0
        self._rate_mark: tuple[float, int] | None = None
        self._rate = 0.0

    def _steps_per_second(self, now: float, env_step: int) -> float:
        if self._rate_mark is None:
            self._rate_mark = (now, env_step)
        elif now - self._rate_mark[0] >= 2.0:
            then, steps = self._rate_mark
            self._rate = (env_step - steps) / (now - then)
            self._rate_mark = (now, env_step)
        return self._rate

    def update(
        self, env_step: int, train_iter: int, last_eval: float | None, best: float | None, evaluated: bool
    ) -> None:
        if self.quiet:
            return
        now = time.monotonic()
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
