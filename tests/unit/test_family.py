"""The DQN family (C51, QR-DQN, IQN, Rainbow) in process: fed by dqnkit's replay buffer they learn exactly as
DI-engine's own policies fed by DequeBuffer, and IQN's exported Q-values are deterministic."""

from __future__ import annotations

import random
from typing import Any

import pytest
import torch
from ding.policy import C51Policy, IQNPolicy, QRDQNPolicy, RainbowDQNPolicy
from ding.utils import set_pkg_seed

from conftest import CONFIGS
from dqnkit.config import compile_dqn_config, load_config_file
from dqnkit.dingext.family import ALGORITHMS
from dqnkit.errors import UserError
from dqnkit.network import IQNExpectedQ, iqn_reference_values
from dqnkit.validate import POLICY_TYPES

DING_POLICIES = {"c51": C51Policy, "qrdqn": QRDQNPolicy, "iqn": IQNPolicy, "rainbow": RainbowDQNPolicy}


def _cfg(policy_type: str) -> Any:
    main, create = load_config_file(CONFIGS / f"cartpole_{policy_type}.py")
    main["policy"]["nstep"] = 3
    # Rainbow's default is prioritized replay, which keeps DI-engine's DequeBuffer.
    main["policy"].update(priority=False, priority_IS_weight=False)
    return compile_dqn_config(main, create, seed=0)


@pytest.mark.parametrize("policy_type", ["c51", "qrdqn", "iqn", "rainbow"])
def test_each_type_learns_from_dqnkits_buffer_exactly_as_dings_policy_from_deque_buffer(
    policy_type: str, twin_buffers: tuple[Any, Any]
) -> None:
    cfg = _cfg(policy_type)
    algorithm = ALGORITHMS[policy_type]
    set_pkg_seed(0)
    reference = DING_POLICIES[policy_type](cfg.policy, model=algorithm.model(**cfg.policy.model))
    set_pkg_seed(0)
    _, ours = algorithm.build(cfg.policy)
    for update in range(30):
        outputs = []
        for policy, buffer_ in zip((reference, ours), twin_buffers, strict=True):
            random.seed(update)
            torch.manual_seed(update)  # IQN draws its fractions, Rainbow its noise
            outputs.append(policy.learn_mode.forward([d.data for d in buffer_.sample(32)]))
        expected, got = outputs
        assert got["total_loss"] == expected["total_loss"], update
    for name in ("model", "target_model"):
        expected_state, got_state = reference.learn_mode.state_dict()[name], ours.learn_mode.state_dict()[name]
        assert all(torch.equal(got_state[k], v) for k, v in expected_state.items()), name


def test_iqn_expected_q_is_deterministic_and_is_dings_head_at_fixed_fractions() -> None:
    cfg = _cfg("iqn")
    set_pkg_seed(0)
    model = ALGORITHMS["iqn"].model(**cfg.policy.model).eval()
    obs = torch.randn(64, 4)
    with torch.no_grad():
        drawn = [model(obs)["logit"] for _ in range(2)]
        assert not torch.equal(*drawn), "DI-engine's IQN draws new fractions on every forward pass"
        q = IQNExpectedQ(model, 32)
        assert torch.equal(q(obs), q(obs))
        assert torch.allclose(q(obs), iqn_reference_values(model, obs, 32).mean(0), rtol=0, atol=1e-5)
        assert not torch.allclose(IQNExpectedQ(model, 4)(obs), q(obs), rtol=0, atol=1e-5)  # the count matters


def test_every_type_the_checks_know_is_built() -> None:
    assert tuple(ALGORITHMS) == POLICY_TYPES


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("policy_type=c52", "create_config.policy.type must be one of dqn, c51, qrdqn, iqn, rainbow, not 'c52'"),
        ("policy_type=rainbw", "did you mean rainbow?"),
    ],
)
def test_an_unknown_type_gets_the_closest_suggested(text: str, fragment: str) -> None:
    from dqnkit.validate import check_policy_type

    with pytest.raises(UserError, match=fragment.replace("?", r"\?")):
        check_policy_type({"policy": {"type": text.split("=")[1]}})


@pytest.mark.parametrize(
    ("policy_type", "override", "fragment"),
    [
        ("c51", ("v_min", 50), "policy.model.v_min (50) must be a number below policy.model.v_max (40)"),
        ("rainbow", ("n_atom", 1), "policy.model.n_atom must be a whole number >= 2"),
        ("qrdqn", ("num_quantiles", 0), "policy.model.num_quantiles must be a whole number >= 1"),
    ],
)
def test_distribution_settings_out_of_range(policy_type: str, override: tuple[str, Any], fragment: str) -> None:
    from dqnkit.validate import check_run_config

    cfg = _cfg(policy_type)
    cfg.policy.model[override[0]] = override[1]
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        check_run_config(cfg)


def test_munchausen_is_dqns_target_only() -> None:
    from dqnkit.validate import check_run_config

    cfg = _cfg("c51")
    cfg.policy.learn.td_target = "munchausen"
    with pytest.raises(UserError, match="td_target munchausen is DQN's; policy type c51 has its own target"):
        check_run_config(cfg)


def test_importance_weights_need_prioritized_replay() -> None:
    from dqnkit.validate import check_run_config

    cfg = _cfg("rainbow")
    cfg.policy.priority_IS_weight = True
    with pytest.raises(UserError, match=r"policy.priority_IS_weight needs policy.priority"):
        check_run_config(cfg)


def test_rainbow_explores_with_its_noise_and_evaluates_without() -> None:
    """DI-engine's Rainbow collected in eval mode, where its noisy layers use their mean weights alone."""
    cfg = _cfg("rainbow")
    set_pkg_seed(0)
    _, policy = ALGORITHMS["rainbow"].build(cfg.policy)
    obs = {i: torch.randn(4) for i in range(64)}
    collected = [policy.collect_mode.forward(obs, eps=0.0) for _ in range(2)]
    assert any(not torch.equal(collected[0][i]["logit"], collected[1][i]["logit"]) for i in obs)
    evaluated = [policy.eval_mode.forward(obs) for _ in range(2)]
    assert all(torch.equal(evaluated[0][i]["logit"], evaluated[1][i]["logit"]) for i in obs)
