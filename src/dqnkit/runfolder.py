"""The run folder: every file name and format a training run writes, and how they are found again.

runs/<name>/
  run_config.yaml  main_config + create_config as given (after --set): what --resume reloads
  config.yaml      the compiled config; config.py the same, loadable by dqn-train --config
  command.txt      every command that trained into this folder, one a line
  metrics.csv      one row per evaluation (METRICS_FIELDS)
  best.pth.tar, latest.pth.tar, iteration_<N>.pth.tar, final.pth.tar   checkpoints (dqnkit.checkpoint)
  summary.json     how and when the run ended; curve.png its learning curve
  export/          what dqn-export writes by default
"""

from __future__ import annotations

import csv
import json
import math
import pprint
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dqnkit.errors import UserError
from dqnkit.files import atomic_write_bytes

RUN_CONFIG = "run_config.yaml"
COMPILED_YAML = "config.yaml"
COMPILED_PY = "config.py"
COMMAND = "command.txt"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
CURVE = "curve.png"
EXPORT_DIR = "export"
BEST, LATEST, FINAL = "best.pth.tar", "latest.pth.tar", "final.pth.tar"
REPLAY_SUFFIX = ".replay"  # final.pth.tar's replay buffer: final.replay.pth.tar
# Which checkpoint a command takes when the user names only the folder: the best agent to export or evaluate,
# the most advanced state to resume.
BEST_FIRST = (BEST, FINAL, LATEST)
NEWEST_FIRST = (FINAL, LATEST, BEST)
METRICS_FIELDS = ("env_step", "train_iter", "wall_seconds", "eval_mean", "eval_std", "eval_min", "eval_max", "loss")


def periodic_name(train_iter: int) -> str:
    return f"iteration_{train_iter}.pth.tar"


def replay_path(checkpoint: Path) -> Path:
    """Where the replay buffer saved with a checkpoint lives: final.pth.tar -> final.replay.pth.tar."""
    stem = checkpoint.name.removesuffix(".pth.tar")
    return checkpoint.with_name(f"{stem}{REPLAY_SUFFIX}.pth.tar")


def periodic_checkpoints(run_dir: Path) -> list[Path]:
    """The run's iteration_<N>.pth.tar files, oldest first."""
    return sorted(run_dir.glob("iteration_*.pth.tar"), key=lambda p: int(p.name.split("_")[1].split(".")[0]))


def require_plain_name(name: str, what: str) -> None:
    """A folder name, not a path: one level under the folder it goes in."""
    if not name or Path(name).name != name or name in (".", ".."):
        raise UserError(f"{what} {name!r} must be a plain folder name")


def new_run_dir(runs_dir: Path, exp_name: str | None, default_name: str) -> Path:
    """Where a new run goes: runs_dir/exp_name (which must be new or empty), or runs_dir/default_name with _2, _3...
    appended while that exists."""
    if exp_name is not None:
        require_plain_name(exp_name, "--exp-name")
        run_dir = runs_dir / exp_name
        if run_dir.exists() and not run_dir.is_dir():
            raise UserError(f"--exp-name {exp_name}: {run_dir} is a file, not a folder")
        if run_dir.exists() and any(run_dir.iterdir()):
            raise UserError(
                f"run folder {run_dir} already exists; choose another --exp-name or continue it with --resume {run_dir}"
            )
        return run_dir
    run_dir = runs_dir / default_name
    n = 2
    while run_dir.exists():
        run_dir = runs_dir / f"{default_name}_{n}"
        n += 1
    return run_dir


def find_checkpoint(run_dir: Path, order: tuple[str, ...] = BEST_FIRST) -> Path:
    if not run_dir.is_dir():
        raise UserError(f"run folder not found: {run_dir}")
    for name in order:
        candidate = run_dir / name
        if candidate.is_file():
            return candidate
    raise UserError(f"run folder {run_dir} holds no checkpoint ({', '.join(order)})")


def resolve_checkpoint(path: str | Path, order: tuple[str, ...] = BEST_FIRST) -> Path:
    """A checkpoint file as given, or the preferred checkpoint of a run folder."""
    path = Path(path)
    if path.is_dir():
        return find_checkpoint(path, order)
    if not path.exists():
        raise UserError(f"no such file or folder: {path}")
    return path


def checkpoints_newest_first(run_dir: Path) -> list[Path]:
    return [run_dir / name for name in NEWEST_FIRST if (run_dir / name).is_file()]


def newest_run(runs_dir: Path) -> Path:
    """The run folder under `runs_dir` whose checkpoint was written last."""
    if not runs_dir.is_dir():
        raise UserError(f"no model given and no {runs_dir}/ folder here; pass a run folder, checkpoint or model file")
    runs = [d for d in runs_dir.iterdir() if d.is_dir() and any((d / n).is_file() for n in BEST_FIRST)]
    if not runs:
        raise UserError(f"no model given and no run with a checkpoint under {runs_dir}/")
    return max(runs, key=lambda d: max((d / n).stat().st_mtime for n in BEST_FIRST if (d / n).is_file()))


def default_export_dir(checkpoint: Path) -> Path:
    return checkpoint.parent / EXPORT_DIR


# --- config files ----------------------------------------------------------------------------------------------


def write_config_files(run_dir: Path, given: dict[str, Any], compiled: dict[str, Any], command: str) -> None:
    """The configs as given and as compiled, and the command, before training starts. All plain values."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RUN_CONFIG).write_text(yaml.safe_dump(given, sort_keys=False))
    (run_dir / COMPILED_YAML).write_text(yaml.safe_dump(compiled, sort_keys=False))
    # DI-engine's save_config runs yapf over the file, which is slow; this writes the same config.
    (run_dir / COMPILED_PY).write_text(
        "# Compiled config of this run: dqn-train --config this_file retrains with exactly these settings.\n"
        "from easydict import EasyDict\n\ninf, nan = float('inf'), float('nan')\n\n"
        f"main_config = EasyDict({pprint.pformat(compiled, sort_dicts=False)})\n\n"
        f"create_config = EasyDict({pprint.pformat(given['create_config'], sort_dicts=False)})\n"
    )
    with open(run_dir / COMMAND, "a") as f:
        f.write(command + "\n")


def read_stop_value(run_dir: Path) -> float | None:
    compiled = run_dir / COMPILED_YAML
    if not compiled.is_file():
        return None
    data = yaml.safe_load(compiled.read_text()) or {}
    value = data.get("env", {}).get("stop_value")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


# --- metrics.csv -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricsRow:
    env_step: int
    train_iter: int
    wall_seconds: float
    eval_mean: float
    eval_std: float
    eval_min: float
    eval_max: float
    loss: float | None

    def cells(self) -> list[str | int]:
        return [
            self.env_step,
            self.train_iter,
            f"{self.wall_seconds:.3f}",
            f"{self.eval_mean:.4f}",
            f"{self.eval_std:.4f}",
            f"{self.eval_min:.4f}",
            f"{self.eval_max:.4f}",
            "" if self.loss is None else f"{self.loss:.6f}",
        ]


def start_metrics(run_dir: Path) -> Path:
    """metrics.csv with its header, unless the run (resumed) already has one."""
    path = run_dir / METRICS
    if not path.exists():
        with open(path, "w", newline="") as f:
            csv.writer(f).writerow(METRICS_FIELDS)
    return path


def append_metrics(run_dir: Path, row: MetricsRow) -> None:
    with open(run_dir / METRICS, "a", newline="") as f:
        csv.writer(f).writerow(row.cells())


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """metrics.csv's evaluation rows as numbers (loss left out: it is empty before the first update)."""
    path = run_dir / METRICS
    if not path.is_file():
        raise UserError(f"{run_dir} has no {METRICS}: is it a dqnkit run folder?")
    numeric = [name for name in METRICS_FIELDS if name != "loss"]
    try:
        with open(path, newline="") as f:
            rows = [{key: float(row[key]) for key in numeric} for row in csv.DictReader(f)]
    except (KeyError, ValueError, TypeError) as e:
        raise UserError(f"{path} is malformed ({e}); expected columns {', '.join(METRICS_FIELDS)}") from e
    return rows


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    atomic_write_bytes(run_dir / SUMMARY, json.dumps(summary, indent=2).encode() + b"\n")
