"""Results over seeds: grouping, scores at env steps, and the bootstrap intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dqnkit.aggregate import group_name, interquartile_mean, interval, median, scores_at
from dqnkit.plotting import Curve


def test_runs_group_by_folder_name_without_the_seed() -> None:
    assert group_name(Path("runs/lunarlander_dqn_seed3")) == "lunarlander_dqn"
    assert group_name(Path("runs/lunarlander_dqn_seed3_2")) == "lunarlander_dqn"  # a numbered repeat
    assert group_name(Path("runs/my_run")) == "my_run"


def test_a_run_scores_its_latest_evaluation_and_keeps_its_last_after_it_stopped() -> None:
    curve = Curve("r", [0, 100, 200], [0, 1, 2], [1.0, 5.0, 9.0], [0, 0, 0], [0, 0, 0], None)
    assert scores_at(curve, np.array([0, 50, 100, 199, 200, 10_000])).tolist() == [1.0, 1.0, 5.0, 5.0, 9.0, 9.0]
    late = Curve("r", [100], [0], [3.0], [0], [0], None)
    assert np.isnan(scores_at(late, np.array([50]))[0])


def test_bootstrap_interval_of_the_median_matches_its_textbook_width() -> None:
    """For n normal draws the median's standard error is sqrt(pi/2) * sigma / sqrt(n): a 95% interval about
    2 * 1.96 * 1.2533 / sqrt(n) wide."""
    values = np.random.default_rng(0).normal(size=400)
    point, low, high = interval(values, median)
    assert point == pytest.approx(float(np.median(values)))
    assert low < point < high and low < 0 < high
    assert high - low == pytest.approx(2 * 1.96 * np.sqrt(np.pi / 2) / np.sqrt(400), rel=0.3)


def test_iqm_interval_is_a_point_for_one_run_or_equal_runs() -> None:
    assert interval(np.array([2.0]), interquartile_mean) == (2.0, 2.0, 2.0)
    assert interval(np.array([3.0, 3.0, 3.0]), interquartile_mean) == (3.0, 3.0, 3.0)
    assert interval(np.array([1.0, np.nan, 3.0]), median)[0] == 2.0  # runs without a score yet are left out
