"""Where benchmark scripts put their results: benchmarks/results/<kind>-<date>.json and .md, and stdout."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import date
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def machine() -> str:
    return f"{os.cpu_count()} cores ({cpu_model()}), {sys.platform}, Python {sys.version.split()[0]}"


def cpu_model() -> str:
    """The CPU's name and model number: math kernels differ between CPU models, and so does a seed's training run."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown CPU"
    fields: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            break  # the first processor's block says it
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    name, family, model = (fields.get(k, "?") for k in ("model name", "cpu family", "model"))
    return f"{name}, family {family} model {model}"


def command_line(script: str) -> str:
    return " ".join(["python", f"scripts/{script}", *sys.argv[1:]])


def save_results(out: Path, kind: str, data: dict[str, Any], markdown: str) -> Path:
    """Write <out>/<kind>-<today>.json and .md, print the markdown, return the path without suffix."""
    out.mkdir(parents=True, exist_ok=True)
    base = out / f"{kind}-{date.today().isoformat()}"
    base.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    base.with_suffix(".md").write_text(markdown)
    print(markdown)
    return base


def plot_learning_curves(path: Path, runs: list[dict[str, Any]], label: str, title: str) -> None:
    """One curve per run (its "curve": metrics.csv rows), labelled "<run[label]> seed <run['seed']>"."""
    from dqnkit.plotting import Curve, plot_curves

    curves = [
        Curve(
            label=f"{r[label]} seed {r['seed']}",
            env_step=[p["env_step"] for p in r["curve"]],
            wall_seconds=[p["wall_seconds"] for p in r["curve"]],
            mean=[p["eval_mean"] for p in r["curve"]],
            low=[p["eval_min"] for p in r["curve"]],
            high=[p["eval_max"] for p in r["curve"]],
            stop_value=None,
        )
        for r in runs
    ]
    plot_curves(curves, path, title=title)
