"""dqnkit's speed-ups of DI-engine pieces give the same results as the pieces they replace."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from conftest import CONFIGS


@pytest.fixture(scope="module")
def sampled_batches() -> list[list[Any]]:
    """Batches sampled from a replay buffer filled by DI-engine's own StepCollector, n-step enhancer and
    data_pusher on CartPole: the transitions DQNPolicy collates every train iteration."""
    from ding.data import DequeBuffer
    from ding.framework import task
    from ding.framework.context import OnlineRLContext
    from ding.framework.middleware import StepCollector, data_pusher, eps_greedy_handler, nstep_reward_enhancer
    from ding.model import DQN
    from ding.policy import DQNPolicy

    from dqnkit.config import compile_dqn_config, load_config_file
    from dqnkit.pipeline import _env_manager

    main, create = load_config_file(CONFIGS / "cartpole.py")
    cfg = compile_dqn_config(main, create, seed=0)
    policy = DQNPolicy(cfg.policy, model=DQN(**cfg.policy.model))
    envs = _env_manager(cfg, 2)
    buffer_ = DequeBuffer(size=1000)
    with task.start(ctx=OnlineRLContext()):
        envs.seed(0)
        envs.launch()
        task.use(eps_greedy_handler(cfg))
        task.use(StepCollector(cfg, policy.collect_mode, envs))
        task.use(nstep_reward_enhancer(cfg))
        task.use(data_pusher(cfg, buffer_))
        task.use(lambda _ctx: setattr(task, "finish", buffer_.count() >= 300))
        task.run(max_step=100)
        envs.close()
    return [[d.data for d in buffer_.sample(64)] for _ in range(5)]


def test_fast_collation_gives_dqn_the_same_batch(sampled_batches: list[list[Any]]) -> None:
    from ding.policy.common_utils import default_preprocess_learn
    from ding.utils.data import collate_fn

    from dqnkit.ding_fixes import fast_batch_collation

    real = collate_fn.ttorch_collate
    fast_batch_collation()
    fast = collate_fn.ttorch_collate
    assert fast is not real
    try:
        for batch in sampled_batches:
            collate_fn.ttorch_collate = real
            expected = default_preprocess_learn(batch, use_nstep=True)
            collate_fn.ttorch_collate = fast
            got = default_preprocess_learn(batch, use_nstep=True)
            assert set(got) == set(expected) and {"obs", "action", "reward", "done", "value_gamma"} <= set(got)
            for key, value in expected.items():
                if value is None:  # "weight" without prioritized replay
                    assert got[key] is None, key
                    continue
                assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
                assert torch.equal(got[key], value), key
    finally:
        collate_fn.ttorch_collate = fast  # what every training in this process uses


def test_fast_collation_leaves_nested_trees_to_ding() -> None:
    import treetensor.torch as ttorch
    from ding.utils.data import collate_fn

    from dqnkit.ding_fixes import fast_batch_collation

    fast_batch_collation()
    trees = [ttorch.as_tensor({"a": {"b": torch.full((2,), float(i))}, "c": torch.tensor([i])}) for i in range(3)]
    stacked = collate_fn.ttorch_collate(trees)
    assert torch.equal(stacked.a.b, torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))
    assert torch.equal(stacked.c, torch.tensor([0, 1, 2]))
