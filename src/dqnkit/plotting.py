"""Learning curves from runs' metrics.csv: eval return (mean with min-max band) against env steps and time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dqnkit import runfolder
from dqnkit.errors import UserError
from dqnkit.files import atomic_write

DPI = 100


@dataclass
class Curve:
    label: str
    env_step: list[float]
    wall_seconds: list[float]
    mean: list[float]
    low: list[float]
    high: list[float]
    stop_value: float | None


def read_curve(run_dir: Path) -> Curve:
    rows = runfolder.read_metrics(run_dir)
    if not rows:
        raise UserError(f"{run_dir / runfolder.METRICS} has no evaluation rows yet")
    return Curve(
        label=run_dir.name,
        env_step=[row["env_step"] for row in rows],
        wall_seconds=[row["wall_seconds"] for row in rows],
        mean=[row["eval_mean"] for row in rows],
        low=[row["eval_min"] for row in rows],
        high=[row["eval_max"] for row in rows],
        stop_value=runfolder.read_stop_value(run_dir),
    )


def plot_curves(
    curves: list[Curve], out: Path, *, title: str | None = None, size: tuple[int, int] = (1400, 560)
) -> Path:
    """Two panels (env steps, wall time), one line per run, min-max band, stop value dashed. Writes a PNG."""
    fig, axes = two_panels(size)
    for curve in curves:
        for ax, xs in ((axes[0], curve.env_step), (axes[1], curve.wall_seconds)):
            (line,) = ax.plot(xs, curve.mean, marker="o", markersize=3, label=curve.label)
            ax.fill_between(xs, curve.low, curve.high, color=line.get_color(), alpha=0.15)
    stop_values = sorted({c.stop_value for c in curves if c.stop_value is not None})
    for ax, xlabel in ((axes[0], "env steps"), (axes[1], "wall time (s)")):
        for value in stop_values:
            ax.axhline(value, color="black", linestyle="--", linewidth=1, label=f"stop value {value:g}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("eval episode return (mean, min-max band)")
        ax.grid(alpha=0.3)
    _focus_y(axes, curves, stop_values)
    axes[0].set_title("Eval return vs env steps")
    axes[1].set_title("Eval return vs wall time")
    handles, labels = axes[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    axes[0].legend(unique.values(), unique.keys(), loc="lower right", fontsize="small")
    return save_png(fig, out, title)


def two_panels(size: tuple[int, int] = (1400, 560)) -> tuple[Any, Any]:
    """An off-screen figure of two panels side by side, `size` in pixels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, 2, figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI)


def save_png(fig: Any, out: Path, title: str | None) -> Path:
    """Title, lay out and write the figure as a PNG (atomically), then free it."""
    import matplotlib.pyplot as plt

    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(out, lambda f: fig.savefig(f, dpi=DPI, format="png"))
    finally:
        plt.close(fig)
    return out


def _focus_y(axes: Any, curves: list[Curve], stop_values: list[float]) -> None:
    """An untrained agent's first evaluations would squash every later curve into a flat line: the y axis starts at
    the 5th percentile of the means instead."""
    import numpy as np

    means = [v for c in curves for v in c.mean]
    if len(means) < 2:
        return
    low = float(np.percentile(means, 5))
    high = max([*means, *(v for c in curves for v in c.high), *stop_values])
    if low <= min(means) or high <= low:
        return
    pad = 0.05 * (high - low)
    for ax in axes:
        ax.set_ylim(low - pad, high + pad)
        ax.text(0.01, 0.01, "lowest 5% of means below the axis", transform=ax.transAxes, fontsize="x-small")


def plot_runs(run_dirs: list[Path], out: Path, title: str | None = None) -> Path:
    return plot_curves([read_curve(Path(d)) for d in run_dirs], out, title=title)
