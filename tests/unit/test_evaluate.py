"""Evaluation statistics, in process."""

from __future__ import annotations

import pytest

from dqnkit.evaluate import Episode, summarize


def test_statistics_of_a_report() -> None:
    episodes = [Episode(i, i, r, n, "") for i, (r, n) in enumerate([(250.0, 200), (100.0, 300), (210.0, 100)])]
    stats = summarize(episodes, threshold=200.0, wall_seconds=2.0)
    assert stats["episodes"] == 3
    assert stats["mean"] == pytest.approx(186.6667, abs=1e-4)
    assert stats["median"] == 210.0 and stats["min"] == 100.0 and stats["max"] == 250.0
    assert stats["std"] == pytest.approx(63.4210, abs=1e-4)  # population std, as interaction_evaluator's
    assert stats["success_rate"] == pytest.approx(2 / 3)
    assert stats["mean_length"] == 200.0 and stats["env_steps"] == 600
    assert stats["env_steps_per_second"] == 300.0


def test_no_threshold_no_success_rate() -> None:
    stats = summarize([Episode(0, 0, 5.0, 5, "")], threshold=None, wall_seconds=0.0)
    assert stats["success_rate"] is None and stats["std"] == 0.0
