"""Evaluation statistics, in process."""

from __future__ import annotations

import pytest

from dqnkit.errors import UserError
from dqnkit.evaluate import Episode, Report, compare, summarize


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


def test_confidence_intervals_against_a_hand_computation() -> None:
    episodes = [Episode(i, i, r, 10, "") for i, r in enumerate([250.0, 100.0, 210.0])]
    stats = summarize(episodes, threshold=200.0, wall_seconds=1.0)
    # mean 186.667, sample sd 77.675, sem 44.845, t(0.975, 2 dof) = 4.3027: half-width 192.954
    assert stats["mean_ci95"] == pytest.approx([-6.2875, 379.6209], abs=1e-3)
    # Wilson, 2 of 3: centre (2/3 + z^2/6) / (1 + z^2/3) = 0.5731, half-width 0.3654 (z = 1.95996)
    assert stats["success_rate_ci95"] == pytest.approx([0.2077, 0.9385], abs=1e-4)
    one = summarize(episodes[:1], threshold=None, wall_seconds=1.0)
    assert one["mean_ci95"] is None and one["success_rate_ci95"] is None


def _report(returns: list[float], seed: int = 0) -> Report:
    episodes = [Episode(i, seed + i, r, 10, "") for i, r in enumerate(returns)]
    return Report("m.onnx", "onnx", "CartPole-v1", episodes, seed, 0.0, None, 1.0)


def test_two_models_compare_on_paired_episodes() -> None:
    a, b = _report([10.0, 20.0, 30.0, 40.0]), _report([12.0, 21.0, 35.0, 38.0])
    comparison = compare(a, b)
    # differences 2, 1, 5, -2: mean 1.5, sample sd 2.8868, sem 1.4434, t(0.975, 3 dof) = 3.1824: half-width 4.5935
    assert comparison["mean_difference"] == pytest.approx(1.5)
    assert comparison["difference_ci95"] == pytest.approx([-3.0935, 6.0935], abs=1e-4)
    assert (comparison["b_better"], comparison["a_better"]) == (3, 1)
    with pytest.raises(UserError, match="did not play the same episodes"):
        compare(a, _report([1.0, 2.0, 3.0, 4.0], seed=7))


def test_torch_inference_runs_on_one_thread_and_gives_the_count_back() -> None:
    import torch

    from dqnkit.network import one_torch_thread

    found = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(KeyError), one_torch_thread():
            assert torch.get_num_threads() == 1
            raise KeyError("the caller's error passes through")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(found)
