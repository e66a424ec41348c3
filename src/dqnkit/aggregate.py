"""Results over seeds: runs grouped by configuration, their interquartile mean (IQM) and median evaluation return at
each env step, with 95% bootstrap confidence intervals (scipy.stats.bootstrap, percentile method), as rliable
recommends for few runs; and a table of final scores.

A run's score at env step x is its latest evaluation at or before x; a run that stopped keeps its last score.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dqnkit.errors import UserError
from dqnkit.plotting import Curve, read_curve, save_png, two_panels

GRID_POINTS = 60
RESAMPLES = 2000
SEED_SUFFIX = re.compile(r"_seed\d+(_\d+)?$")


def interquartile_mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """The mean of the middle half: a quarter cut from each end (scipy's trim_mean)."""
    from scipy import stats

    return np.asarray(stats.trim_mean(values, 0.25, axis=axis))


def median(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(np.median(values, axis=axis))


STATISTICS: dict[str, Callable[..., np.ndarray]] = {"IQM": interquartile_mean, "median": median}


def group_name(run_dir: Path) -> str:
    """Runs of one configuration share their folder name but for the seed: lunarlander_dqn_seed3 -> lunarlander_dqn."""
    return SEED_SUFFIX.sub("", run_dir.name)


def group_runs(run_dirs: list[Path]) -> dict[str, list[Curve]]:
    groups: dict[str, list[Curve]] = {}
    for run_dir in run_dirs:
        groups.setdefault(group_name(Path(run_dir)), []).append(read_curve(Path(run_dir)))
    return groups


def scores_at(curve: Curve, steps: np.ndarray) -> np.ndarray:
    """The run's latest evaluation mean at or before each of `steps` (NaN before its first)."""
    index = np.searchsorted(np.asarray(curve.env_step), steps, side="right") - 1
    means = np.asarray(curve.mean, dtype=float)
    return np.where(index >= 0, means[np.clip(index, 0, None)], np.nan)


def interval(values: np.ndarray, statistic: Callable[..., np.ndarray]) -> tuple[float, float, float]:
    """(statistic, low, high): a 95% percentile-bootstrap interval over the runs (the point itself for one run, or
    for runs that all scored the same)."""
    values = values[~np.isnan(values)]
    point = float(statistic(values))
    if len(values) < 2 or np.ptp(values) == 0:
        return point, point, point
    from scipy import stats

    result = stats.bootstrap(
        (values,),
        statistic,
        n_resamples=RESAMPLES,
        confidence_level=0.95,
        method="percentile",
        vectorized=True,
        random_state=0,
    )
    return point, float(result.confidence_interval.low), float(result.confidence_interval.high)


@dataclass
class Band:
    steps: np.ndarray
    point: np.ndarray
    low: np.ndarray
    high: np.ndarray


def band(curves: list[Curve], statistic: Callable[..., np.ndarray], steps: np.ndarray) -> Band:
    scores = np.stack([scores_at(c, steps) for c in curves])  # runs x steps
    rows = [interval(scores[:, i], statistic) for i in range(len(steps))]
    point, low, high = (np.asarray(column) for column in zip(*rows, strict=True))
    return Band(steps, point, low, high)


@dataclass
class FinalScores:
    group: str
    scores: list[float]  # each run's last evaluation mean
    intervals: dict[str, tuple[float, float, float]]  # IQM and median: (point, low, high)


def final_scores(groups: dict[str, list[Curve]]) -> list[FinalScores]:
    """Per group: the runs' last evaluation means, their IQM and median with 95% intervals."""
    table = []
    for name, curves in groups.items():
        finals = np.asarray([c.mean[-1] for c in curves], dtype=float)
        intervals = {label: interval(finals, statistic) for label, statistic in STATISTICS.items()}
        table.append(FinalScores(name, finals.tolist(), intervals))
    return table


def format_table(table: list[FinalScores]) -> str:
    lines = ["| config | runs | IQM of final scores (95% CI) | median (95% CI) |", "| --- | ---: | --- | --- |"]
    for row in table:
        cells = [f"{p:.2f} ({low:.2f} to {high:.2f})" for p, low, high in row.intervals.values()]
        lines.append(f"| {row.group} | {len(row.scores)} | {' | '.join(cells)} |")
    return "\n".join(lines)


def plot_aggregate(run_dirs: list[Path], out: Path, title: str | None = None) -> str:
    """IQM and median return against env steps per configuration, with their 95% bootstrap bands; writes the PNG
    and returns the table of final scores."""
    groups = group_runs(run_dirs)
    if all(len(curves) < 2 for curves in groups.values()):
        raise UserError("--aggregate needs at least two runs of a configuration (folders <name>_seed<S>)")
    last = max(c.env_step[-1] for curves in groups.values() for c in curves)
    steps = np.linspace(0, last, GRID_POINTS)
    fig, axes = two_panels()
    for name, curves in groups.items():
        for ax, statistic in zip(axes, STATISTICS.values(), strict=True):
            b = band(curves, statistic, steps)
            (line,) = ax.plot(b.steps, b.point, label=f"{name} ({len(curves)} runs)")
            ax.fill_between(b.steps, b.low, b.high, color=line.get_color(), alpha=0.2)
    for ax, label in zip(axes, STATISTICS, strict=True):
        ax.set_xlabel("env steps")
        ax.set_ylabel(f"eval return, {label} over runs (95% bootstrap CI)")
        ax.set_title(f"{label} over runs")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize="small")
    save_png(fig, out, title)
    return format_table(final_scores(groups))
