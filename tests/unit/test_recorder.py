"""The stop rule and stop reasons, in process."""

from __future__ import annotations

import pytest
import torch
from easydict import EasyDict

from dqnkit.train.recorder import Evaluation, StopRule, stop_reason


def _evaluation(train_iter: int, mean: float, low: float) -> Evaluation:
    return Evaluation(env_step=100, train_iter=train_iter, mean=mean, std=1.0, min=low, max=mean + 10, model={})


@pytest.mark.parametrize(
    ("rule", "train_iter", "mean", "low", "stops"),
    [
        (StopRule(220.0), 0, 300.0, 250.0, False),  # an untrained network never stops a run
        (StopRule(220.0), 10, 219.9, 200.0, False),
        (StopRule(220.0), 10, 220.0, -50.0, True),  # DI-engine's rule: the mean alone
        (StopRule(220.0, min_return=100.0), 10, 230.0, 99.0, False),  # one bad episode holds it back
        (StopRule(220.0, min_return=100.0), 10, 230.0, 100.0, True),
        (StopRule(float("inf")), 10, 1e9, 1e9, False),
    ],
)
def test_the_stop_rule(rule: StopRule, train_iter: int, mean: float, low: float, stops: bool) -> None:
    assert rule.met_by(_evaluation(train_iter, mean, low)) is stops


@pytest.mark.parametrize(
    ("reached", "env_step", "train_iter", "reason"),
    [
        (True, 10**9, 10**9, "stop_value"),
        (False, 1001, 5, "max_env_steps"),
        (False, 1000, 51, "max_train_iters"),
        (False, 1000, 50, "finished"),
    ],
)
def test_why_a_run_ended(reached: bool, env_step: int, train_iter: int, reason: str) -> None:
    settings = EasyDict(max_env_steps=1000, max_train_iters=50)
    assert stop_reason(settings, reached, env_step, train_iter) == reason


def test_an_evaluation_lands_in_dings_context_as_interaction_evaluator_leaves_it() -> None:
    ctx = EasyDict()
    Evaluation(1, 2, 3.0, 4.0, 1.0, 5.0, {"w": torch.zeros(1)}).put_in(ctx)
    assert (ctx.eval_value, ctx.eval_value_std, ctx.eval_value_min, ctx.eval_value_max) == (3.0, 4.0, 1.0, 5.0)


def test_a_resumed_run_seeds_its_envs_apart_from_the_first_run() -> None:
    """A resumed run's collector envs must not start the episodes the run started with (its exploration would
    repeat); the seed drawn is the same for the same checkpoint, and differs by the env step resumed at."""
    from dqnkit.train.pipeline import env_seed

    assert env_seed(7, None) == 7
    resumed = {env_step: env_seed(7, {"env_step": env_step}) for env_step in (1000, 2000)}
    assert 7 not in resumed.values() and len(set(resumed.values())) == 2
    assert env_seed(7, {"env_step": 1000}) == resumed[1000]
    assert all(0 <= seed < 2**30 for seed in resumed.values())
