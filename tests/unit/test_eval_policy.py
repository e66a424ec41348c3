"""What the background evaluator plays: DI-engine's eval mode, or with the protocol's random actions."""

from __future__ import annotations

from typing import Any

import torch

from conftest import CONFIGS


def _eval_mode() -> tuple[Any, Any]:
    from dqnkit.config import compile_dqn_config, load_config_file
    from dqnkit.dingext.family import ALGORITHMS
    from dqnkit.train.plan import fill_env_facts
    from dqnkit.validate import check_run_config

    main, create = load_config_file(CONFIGS / "cartpole.py")
    fill_env_facts(main, [])
    cfg = compile_dqn_config(main, create, seed=0)
    check_run_config(cfg)
    torch.manual_seed(0)
    _, policy = ALGORITHMS["dqn"].build(cfg.policy, enable_field=["eval"])
    return cfg, policy.eval_mode


def _actions(policy: Any, batches: int = 50) -> list[int]:
    obs = {i: torch.randn(4, generator=torch.Generator().manual_seed(i)) for i in range(8)}
    return [int(v["action"]) for _ in range(batches) for v in policy.forward(obs).values()]


def test_greedy_configs_play_the_eval_mode_itself() -> None:
    from dqnkit.train.background_eval import eval_policy

    cfg, eval_mode = _eval_mode()
    assert cfg.dqnkit.eval_epsilon == 0.0  # resolved: not an Atari game
    assert eval_policy(cfg, eval_mode) is eval_mode


def test_eval_epsilon_replaces_that_share_of_greedy_actions_reproducibly() -> None:
    from dqnkit.train.background_eval import eval_policy

    cfg, eval_mode = _eval_mode()
    greedy = _actions(eval_mode)
    cfg.dqnkit.eval_epsilon = 0.5
    played = _actions(eval_policy(cfg, eval_mode))
    assert played == _actions(eval_policy(cfg, eval_mode))  # the same stream for the same run seed
    changed = sum(a != g for a, g in zip(played, greedy, strict=True)) / len(greedy)
    assert 0.15 < changed < 0.35  # half are random, and half of those pick the greedy action anyway (2 actions)
    assert set(played) <= {0, 1}
