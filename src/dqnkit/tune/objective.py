"""What a trial is worth, from its seeds' run folders: pure functions of their evaluation curves and summaries.

`steps` (the default, minimized): the median over seeds of the env steps each took to reach the stop rule. A seed
that did not stop counts as the budget plus a penalty of up to one more budget, in proportion to how far its best
evaluation fell short of the stop value; below one env step, a higher evaluation at the stop breaks ties.
`area` (maximized): the median over seeds of the area under the evaluation curve over the budget, divided by the
budget (the mean evaluation return along the run; a seed that stopped keeps its last value to the end).
Pruning compares trials at the same env steps: `steps` reports how far the seeds' median evaluation is below the
stop value, `area` the area so far."""

from __future__ import annotations

import itertools
import math
import statistics
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Literal

OBJECTIVES: dict[str, Literal["minimize", "maximize"]] = {"steps": "minimize", "area": "maximize"}
TIE_BREAK = 0.49  # below half a step: a median over an even number of seeds moves in half steps


@dataclass(frozen=True)
class Curve:
    """One seed's evaluations so far: env steps and mean returns, and whether its run has ended."""

    steps: tuple[int, ...]
    values: tuple[float, ...]
    ended: bool

    def value_at(self, step: int) -> float | None:
        """The evaluation in force at `step`: the last one taken at or before it."""
        i = bisect_right(self.steps, step)
        return self.values[i - 1] if i else None

    def passed(self, step: int) -> bool:
        return self.ended or (bool(self.steps) and self.steps[-1] >= step)

    def area(self, until: int) -> float:
        """Mean evaluation over env steps 0..until (a step function: each evaluation holds until the next, the first
        also before it)."""
        if not self.steps or until <= 0:
            return math.nan
        total = 0.0
        edges = [0, *[s for s in self.steps[1:] if s < until], until]
        for start, end in itertools.pairwise(edges):
            value = self.value_at(start)
            total += (self.values[0] if value is None else value) * (end - start)
        return total / until


def _scale(stop_value: float) -> float:
    return max(1.0, abs(stop_value))


def seed_steps(summary: dict[str, Any], budget: int, stop_value: float) -> float:
    """Env steps to the stop rule, or the budget plus the shortfall penalty."""
    if summary["stop_reason"] == "stop_value":
        return float(summary["env_steps"])
    best = summary.get("best_eval")
    shortfall = 1.0 if best is None else min(1.0, max(0.0, stop_value - float(best)) / _scale(stop_value))
    return budget * (1.0 + shortfall)


def steps_value(summaries: list[dict[str, Any]], budget: int, stop_value: float) -> float:
    median = statistics.median(seed_steps(s, budget, stop_value) for s in summaries)
    at_stop = [float(s["last_eval"]["mean"]) for s in summaries if s["stop_reason"] == "stop_value"]
    if not at_stop:
        return median + TIE_BREAK
    margin = min(1.0, max(0.0, (statistics.median(at_stop) - stop_value) / _scale(stop_value)))
    return median + TIE_BREAK * (1.0 - margin)


def area_value(curves: list[Curve], budget: int) -> float:
    return statistics.median(c.area(budget) for c in curves)


def trial_value(
    objective: str, summaries: list[dict[str, Any]], curves: list[Curve], budget: int, stop: float
) -> float:
    if objective == "steps":
        return steps_value(summaries, budget, stop)
    return area_value(curves, budget)


def intermediate(objective: str, curves: list[Curve], step: int, stop_value: float) -> float | None:
    """The value pruning compares at `step`, once every seed has an evaluation in force there and has got past it."""
    if not curves or not all(c.passed(step) and c.value_at(step) is not None for c in curves):
        return None
    if objective == "steps":
        median = statistics.median(c.value_at(step) or 0.0 for c in curves)
        return max(0.0, stop_value - median)
    return statistics.median(c.area(step) for c in curves)


def report_steps(budget: int, points: int = 20) -> list[int]:
    """The env steps pruning compares trials at: the same for every trial, whatever its evaluation frequency."""
    return [budget * i // points for i in range(1, points + 1)]
