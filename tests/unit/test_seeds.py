"""dqn-train --seeds: the seed lists it accepts and the table it ends with."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from dqnkit.aggregate import interquartile_mean
from dqnkit.cli.common import seed_list
from dqnkit.train.seeds import SeedRun, summary_table


@pytest.mark.parametrize(
    ("text", "seeds"), [("0-3", [0, 1, 2, 3]), ("0,3,5", [0, 3, 5]), ("5,0-2,2", [0, 1, 2, 5]), ("7", [7])]
)
def test_seed_lists(text: str, seeds: list[int]) -> None:
    assert seed_list(text) == seeds


@pytest.mark.parametrize("text", ["3-1", "a", "-1", "0-", "1,,2"])
def test_seed_lists_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected seeds like 0-7 or 0,3,5"):
        seed_list(text)


def test_interquartile_mean_is_the_mean_of_the_middle_half() -> None:
    # Eight values, sorted -50, 1, 2, 3, 4, 5, 6, 100: two cut from each end, the mean of 2, 3, 4, 5.
    assert interquartile_mean(np.array([100, 1, 2, 3, 4, 5, 6, -50])) == pytest.approx(3.5)
    assert interquartile_mean(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(2.5)


def test_summary_table_lists_each_seed_then_median_and_iqm(tmp_path: Path) -> None:
    runs = []
    for seed, steps, wall, best in ((0, 1000, 10.0, 1.0), (1, 3000, 30.0, 3.0), (2, 2000, 20.0, 2.0)):
        run_dir = tmp_path / f"x_seed{seed}"
        run_dir.mkdir()
        summary = {"stop_reason": "stop_value", "env_steps": steps, "wall_seconds": wall, "best_eval": best}
        (run_dir / "summary.json").write_text(json.dumps(summary))
        runs.append(SeedRun(seed, run_dir, returncode=0))
    runs.append(SeedRun(3, tmp_path / "x_seed3", returncode=1))  # failed before writing its summary
    lines = summary_table(runs).splitlines()
    assert lines[2] == "| 0 | stop_value | 1,000 | 10 | 1.0 |"
    assert lines[5] == "| 3 | no summary (exit 1) | - | - | - |"
    assert lines[6] == "| median | | 2,000 | 20 | 2.0 |"
    assert lines[7] == "| IQM | | 2,000 | 20 | 2.0 |"


def test_a_running_seeds_metrics_are_read_as_they_grow_and_a_half_written_row_is_waited_out(tmp_path: Path) -> None:
    run = SeedRun(0, tmp_path)
    assert run.metrics() == [] and run.status() == "seed 0: starting"
    header = "env_step,train_iter,wall_seconds,eval_mean,eval_std,eval_min,eval_max,loss\n"
    metrics = tmp_path / "metrics.csv"
    metrics.write_text(header + "0,0,1.0,-100.0,5.0,-110.0,-90.0,\n")
    assert [row["eval_mean"] for row in run.metrics()] == [-100.0]
    with metrics.open("a") as f:
        f.write("4000,2000,9.0,")  # the run is writing its next row this very moment
    assert [row["eval_mean"] for row in run.metrics()] == [-100.0]
    with metrics.open("a") as f:
        f.write("150.5,20.0,120.0,180.0,0.5\n")
    assert [row["eval_mean"] for row in run.metrics()] == [-100.0, 150.5]
    assert run.status() == "seed 0: 4,000 steps, eval 150.5"
