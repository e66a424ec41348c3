"""dqnkit's speed-ups of DI-engine pieces give the same results as the pieces they replace."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import CONFIGS, collect_cartpole


def _collected_chunks(steps: int) -> tuple[Any, list[tuple[list[Any], list[int]]]]:
    """What DI-engine's StepCollector hands the n-step enhancer on CartPole (8 envs, n_sample 32 per call): per
    call, ctx.trajectories (each env's transitions in time order, envs concatenated) and ctx.trajectory_end_idx."""
    import copy

    chunks: list[tuple[list[Any], list[int]]] = []

    def record(ctx: Any) -> None:
        chunks.append((copy.deepcopy(ctx.trajectories), list(ctx.trajectory_end_idx)))

    cfg = collect_cartpole(8, steps, lambda _cfg, _task: [record])
    return cfg, chunks


def test_nstep_windows_follow_each_env_across_collections() -> None:
    """dqnkit's n-step enhancer on real collector output (8 CartPole envs, 4 steps per env per collection):
    every step comes out once, with its own env's next n rewards (read across collections, cut after a terminal
    step) and next_obs/done/value_gamma of the window's last step. DI-engine's enhancer, on the same chunks,
    sums rewards of two different envs."""
    import copy

    from ding.framework.middleware import nstep_reward_enhancer as ding_enhancer

    from dqnkit.dingext.nstep import nstep_reward_enhancer

    cfg, chunks = _collected_chunks(steps=40)
    nstep, gamma = int(cfg.policy.nstep), float(cfg.policy.discount_factor)
    assert nstep == 3
    streams: dict[int, list[Any]] = {}  # env -> its raw steps in time order, across collections
    marker = 0.5
    for raw, end_idx in chunks:
        for transition in raw:  # CartPole pays 1.0 every step: make each reward name its step
            transition.reward = torch.tensor([marker])
            marker += 1
        start = 0
        for env, end in enumerate(end_idx):
            streams.setdefault(env, []).extend(copy.deepcopy(raw[start : end + 1]))
            start = end + 1
    expected = {}
    for stream in streams.values():
        for i, step in enumerate(stream):
            window = []
            for k in range(i, len(stream)):
                window.append(stream[k])
                if len(window) == nstep or bool(stream[k].done):
                    break
            if len(window) == nstep or bool(window[-1].done):
                expected[float(step.reward)] = window

    enhance = nstep_reward_enhancer(cfg)
    seen = set()
    for raw, end_idx in chunks:
        ctx = type("Ctx", (), {})()
        ctx.trajectories, ctx.trajectory_end_idx = copy.deepcopy(raw), end_idx
        enhance(ctx)
        for out in ctx.trajectories:
            key = float(out.reward[0])
            window = expected[key]
            assert key not in seen
            seen.add(key)
            assert out.reward.tolist() == [float(w.reward) for w in window] + [0.0] * (nstep - len(window))
            assert torch.equal(out.next_obs, window[-1].next_obs)
            assert bool(out.done) == bool(window[-1].done)
            assert out.value_gamma.item() == pytest.approx(gamma ** len(window))
    assert seen == set(expected), "a completed window never came out"
    assert any(len(w) == nstep and bool(w[-1].done) is False for w in expected.values())
    assert any(len(w) < nstep for w in expected.values()), "no episode ended inside a window"

    crossings = 0
    for raw, end_idx in chunks:
        ding_ctx = type("Ctx", (), {})()
        ding_ctx.trajectories = copy.deepcopy(raw)
        ding_enhancer(cfg)(ding_ctx)
        for end in end_idx[:-1]:  # env boundaries: the step before an env's last one, when no episode ends there
            if not any(bool(raw[k].done) for k in (end - 1, end, end + 1)):
                assert float(ding_ctx.trajectories[end - 1].reward[2]) == float(raw[end + 1].reward)
                crossings += 1
    assert crossings > 0


@pytest.fixture(scope="module")
def sampled_batches() -> list[list[Any]]:
    """Batches sampled from a replay buffer filled by DI-engine's StepCollector and data_pusher (with dqnkit's
    3-step enhancer between them) on CartPole: the transitions DQNPolicy collates every train iteration."""
    from ding.data import DequeBuffer
    from ding.framework.middleware import data_pusher

    from dqnkit.dingext.nstep import nstep_reward_enhancer

    buffer_ = DequeBuffer(size=1000)

    def fill(cfg: Any, task: Any) -> list[Any]:
        def finish_when_full(_ctx: Any) -> None:
            task.finish = buffer_.count() >= 300

        return [nstep_reward_enhancer(cfg), data_pusher(cfg, buffer_), finish_when_full]

    collect_cartpole(2, 100, fill)
    return [[d.data for d in buffer_.sample(64)] for _ in range(5)]


def test_fast_collation_gives_dqn_the_same_batch(sampled_batches: list[list[Any]]) -> None:
    from ding.policy.common_utils import default_preprocess_learn
    from ding.utils.data import collate_fn

    from dqnkit.dingext.speedups import fast_batch_collation

    real = getattr(collate_fn.ttorch_collate, "__wrapped__", collate_fn.ttorch_collate)  # installed before, or not
    fast_batch_collation()
    fast = collate_fn.ttorch_collate
    assert fast is not real and fast.__wrapped__ is real
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

    from dqnkit.dingext.speedups import fast_batch_collation

    fast_batch_collation()
    trees = [ttorch.as_tensor({"a": {"b": torch.full((2,), float(i))}, "c": torch.tensor([i])}) for i in range(3)]
    stacked = collate_fn.ttorch_collate(trees)
    assert torch.equal(stacked.a.b, torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))
    assert torch.equal(stacked.c, torch.tensor([0, 1, 2]))


def _dqn_policy_and_fast_dqn_policy() -> tuple[Any, Any]:
    """DI-engine's DQNPolicy and dqnkit's, for configs/cartpole.py with 3-step returns, from the same weights."""
    from ding.model import DQN
    from ding.policy import DQNPolicy
    from ding.utils import set_pkg_seed

    from dqnkit.config import compile_dqn_config, load_config_file
    from dqnkit.dingext.policy import FastDQNPolicy

    main, create = load_config_file(CONFIGS / "cartpole.py")
    main["policy"]["nstep"] = 3
    cfg = compile_dqn_config(main, create, seed=0)
    policies = []
    for policy_class in (DQNPolicy, FastDQNPolicy):
        set_pkg_seed(0)
        policies.append(policy_class(cfg.policy, model=DQN(**cfg.policy.model)))
    return policies[0], policies[1]


def _assert_same_networks(reference: Any, fast: Any) -> None:
    """Online and target networks equal, bit for bit."""
    for name in ("model", "target_model"):
        expected_state, got_state = reference.learn_mode.state_dict()[name], fast.learn_mode.state_dict()[name]
        assert all(torch.equal(got_state[k], v) for k, v in expected_state.items()), name


def test_fast_dqn_policy_learns_exactly_like_dqn_policy(sampled_batches: list[list[Any]]) -> None:
    """250 updates from the same start on the same batches, with collection and evaluation switching the network's
    mode in between, and two target-network copies (every 100 updates): the same losses and the same parameters,
    bit for bit, and the same actions and Q-values from collection (epsilon-greedy, same random state) and
    evaluation."""
    import numpy as np

    policies = reference, fast = _dqn_policy_and_fast_dqn_policy()
    assert fast._cfg.learn.target_update_freq == 100
    obs = {i: torch.rand(4) for i in range(3)}
    for update in range(250):
        batch = sampled_batches[update % len(sampled_batches)]
        if update % 7 == 0:  # what collection and evaluation do between training phases
            acted = []
            for policy in policies:
                np.random.seed(update)  # epsilon-greedy draws with numpy, random actions with torch
                torch.manual_seed(update)
                acted.append((policy.collect_mode.forward(obs, eps=0.5), policy.eval_mode.forward(obs)))
            for expected_out, got_out in zip(*acted, strict=True):
                assert got_out.keys() == expected_out.keys()
                for env_id, expected_env in expected_out.items():
                    for key in ("action", "logit"):
                        assert got_out[env_id][key].shape == expected_env[key].shape, (update, key)
                        assert torch.equal(got_out[env_id][key], expected_env[key]), (update, env_id, key)
        expected, got = reference.learn_mode.forward(batch), fast.learn_mode.forward(batch)
        for key in ("total_loss", "q_value", "target_q_value", "cur_lr"):
            assert got[key] == expected[key], (update, key)
    _assert_same_networks(reference, fast)
    # The target network did follow the online one (copies at updates 100 and 200), so the check above has teeth.
    online, target = fast.learn_mode.state_dict()["model"], fast.learn_mode.state_dict()["target_model"]
    assert not all(torch.equal(v, online[k]) for k, v in target.items())


def test_array_replay_buffer_holds_and_samples_what_deque_buffer_does(twin_buffers: tuple[Any, Any]) -> None:
    import random

    deque_buffer, array_buffer = twin_buffers
    for position in (0, 1, 150, 199):  # oldest first, across the ring's wrap
        expected = deque_buffer.get(position).data
        got = array_buffer.get(position).data
        for key in ("obs", "next_obs", "action", "reward", "done", "value_gamma"):
            assert torch.equal(got[key], expected[key]), (position, key)
    for seed in range(3):
        random.seed(seed)
        expected_obs = torch.stack([d.data.obs for d in deque_buffer.sample(64)])
        random.seed(seed)
        got_obs = torch.stack([d.data["obs"] for d in array_buffer.sample(64)])
        assert torch.equal(got_obs, expected_obs)
    with pytest.raises(ValueError, match="less than 201"):  # what DI-engine's data fetcher waits on
        array_buffer.sample(201)


def test_array_replay_buffer_saves_and_loads_its_transitions(twin_buffers: tuple[Any, Any], tmp_path: Path) -> None:
    from dqnkit.dingext.replay import ArrayReplayBuffer

    _, array_buffer = twin_buffers
    array_buffer.save_data(str(tmp_path / "replay.pt"))
    loaded = ArrayReplayBuffer(size=200)
    loaded.load_data(str(tmp_path / "replay.pt"))
    assert loaded.count() == 200
    for position in (0, 199):
        assert torch.equal(loaded.get(position).data["obs"], array_buffer.get(position).data["obs"])


def test_fast_dqn_policy_on_array_replay_learns_exactly_like_dqn_policy_on_deque_buffer(
    twin_buffers: tuple[Any, Any],
) -> None:
    """DI-engine's DQNPolicy fed by DequeBuffer and dqnkit's policy fed by ArrayReplayBuffer, sampling under the
    same random state for 150 updates: the same losses and parameters, bit for bit."""
    import random

    policies = reference, fast = _dqn_policy_and_fast_dqn_policy()
    for update in range(150):
        outputs = []
        for policy, buffer_ in zip(policies, twin_buffers, strict=True):
            random.seed(update)
            outputs.append(policy.learn_mode.forward([d.data for d in buffer_.sample(64)]))
        expected, got = outputs
        for key in ("total_loss", "q_value", "target_q_value"):
            assert got[key] == expected[key], (update, key)
    _assert_same_networks(reference, fast)


def test_munchausen_learn_step_matches_dings_one_step_mdqn_policy(sampled_batches: list[list[Any]]) -> None:
    """With 1-step returns, dqnkit's learner with td_target "munchausen" and DI-engine's MDQNPolicy (its
    m_q_1step_td_error), from the same weights on the same batches for 120 updates with a target copy at 100: the
    same losses, Q-values and parameters, to float rounding (one target forward over obs and next_obs here, two
    there)."""
    from ding.model import DQN
    from ding.policy import MDQNPolicy
    from ding.utils import set_pkg_seed

    from dqnkit.config import compile_dqn_config, load_config_file
    from dqnkit.dingext.policy import FastDQNPolicy

    main, create = load_config_file(CONFIGS / "cartpole.py")
    main["policy"]["nstep"] = 1
    main["policy"]["learn"].update(td_target="munchausen", munchausen_tau=0.3, munchausen_alpha=0.9)
    cfg = compile_dqn_config(main, create, seed=0)
    mdqn_cfg = copy.deepcopy(cfg.policy)
    mdqn_cfg.update(entropy_tau=0.3, m_alpha=0.9)
    set_pkg_seed(0)
    reference = MDQNPolicy(mdqn_cfg, model=DQN(**cfg.policy.model))
    set_pkg_seed(0)
    fast = FastDQNPolicy(cfg.policy, model=DQN(**cfg.policy.model))
    for group in reference._optimizer.param_groups:  # MDQNPolicy's Adam uses the paper's eps, 3.125e-4
        group["eps"] = fast._optimizer.param_groups[0]["eps"]
    one_step = [
        [{**{k: v for k, v in d.items() if k != "value_gamma"}, "reward": d["reward"][:1]} for d in batch]
        for batch in sampled_batches
    ]
    losses = []
    for update in range(120):
        batch = one_step[update % len(one_step)]
        expected, got = reference.learn_mode.forward(batch), fast.learn_mode.forward(batch)
        for key in ("total_loss", "q_value", "target_q_value"):
            assert got[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-5), (update, key)
        losses.append(got["total_loss"])
    for name in ("model", "target_model"):
        expected_state, got_state = reference.learn_mode.state_dict()[name], fast.learn_mode.state_dict()[name]
        for key, value in expected_state.items():
            torch.testing.assert_close(got_state[key], value, rtol=1e-4, atol=1e-5, msg=f"{name}.{key}")
    assert len(set(losses)) > 100  # the batches and weights changed: the comparison covered learning


def test_munchausen_target_over_three_steps_by_hand() -> None:
    """Two actions, tau 1 and alpha 0.5, 3-step windows: one ending in a terminal step after 2 (value_gamma
    gamma**2, no bootstrap) and one bootstrapping on the soft value of the state 3 steps on."""
    import math

    from dqnkit.dingext.munchausen import munchausen_nstep_target

    q_obs = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    q_next = torch.tensor([[5.0, 5.0], [2.0, 0.0]])
    target = munchausen_nstep_target(
        q_obs,
        q_next,
        action=torch.tensor([1, 0]),
        reward=torch.tensor([[1.0, 1.0], [2.0, 1.0], [0.0, 1.0]]),  # (n, batch)
        done=torch.tensor([1.0, 0.0]),
        gamma=0.5,
        tau=1.0,
        alpha=0.5,
        value_gamma=torch.tensor([0.25, 0.125]),
    )
    log_pi_worse = -math.log(1 + math.e)  # ln softmax([1, 0])[1] = -1.31: clipped to -1
    pi_next = [math.e**2 / (math.e**2 + 1), 1 / (math.e**2 + 1)]
    soft_value = sum(p * (q - math.log(p)) for p, q in zip(pi_next, [2.0, 0.0], strict=True))
    expected = [
        0.5 * max(log_pi_worse, -1.0) + 1.0 + 0.5 * 2.0,
        0.5 * math.log(0.5) + 1.0 + 0.5 * 1.0 + 0.25 * 1.0 + 0.125 * soft_value,
    ]
    torch.testing.assert_close(target, torch.tensor(expected))


def test_another_ding_version_is_refused_with_one_line() -> None:
    from dqnkit.dingext import WRITTEN_FOR, check_ding_version
    from dqnkit.errors import UserError

    check_ding_version(WRITTEN_FOR)
    with pytest.raises(UserError, match=r"DI-engine 0\.6\.0 is installed, .* written for DI-engine 0\.5\.3"):
        check_ding_version("0.6.0")
    with pytest.raises(UserError, match="DI-engine is not installed"):
        check_ding_version(None)


def _prioritized_after_updates(twin_buffers: tuple[Any, Any], is_weight: bool) -> Any:
    """A PrioritizedReplayBuffer of 128 fed the twin buffers' 200 transitions (it has wrapped around), with new
    priorities for a sampled batch, as the learner hands them back."""
    import numpy as np

    from dqnkit.dingext.replay import PrioritizedReplayBuffer
    from dqnkit.dingext.speedups import tree_tensor

    _, array_buffer = twin_buffers
    buffer = PrioritizedReplayBuffer(128, is_weight=is_weight)
    for position in range(array_buffer.count()):
        buffer.push(tree_tensor(dict(array_buffer.get(position).data.transition())))
    np.random.seed(3)
    for item, priority in zip(buffer.sample(16), np.linspace(0.1, 5.0, 16), strict=True):
        buffer.update(item.index, item.data, {**item.meta, "priority": float(priority)})
    return buffer


@pytest.mark.parametrize("is_weight", [True, False])
def test_prioritized_replay_saves_transitions_priorities_and_samples_alike(
    twin_buffers: tuple[Any, Any], is_weight: bool
) -> None:
    """Loaded into a fresh buffer, the saved state samples the same transitions with the same importance weights
    (same numpy state), and the next push replaces the same oldest transition."""
    import numpy as np

    from dqnkit.dingext.replay import PrioritizedReplayBuffer

    saved = _prioritized_after_updates(twin_buffers, is_weight)
    state = copy.deepcopy(saved.state_dict())
    assert len(state["weights"]) == 128 and state["max_priority"] > 1.0
    loaded = PrioritizedReplayBuffer(128, is_weight=is_weight)
    loaded.load_state_dict(state)
    assert loaded.count() == 128
    assert np.array_equal(loaded.per.sum_tree.value, saved.per.sum_tree.value)  # bit for bit, inner nodes included
    if is_weight:
        assert np.array_equal(loaded.per.min_tree.value, saved.per.min_tree.value)

    def draw(buffer: Any) -> list[tuple[list[float], float | None]]:
        np.random.seed(11)
        return [(item.data["obs"].tolist(), item.meta.get("priority_IS")) for item in buffer.sample(32)]

    assert draw(loaded) == draw(saved)
    newest = {key: value.clone() for key, value in saved.storage[-1].data.items()}
    for buffer in (saved, loaded):
        buffer.push(newest)
    assert draw(loaded) == draw(saved)
    with pytest.raises(ValueError, match="holds 128 transitions, this one 64"):
        PrioritizedReplayBuffer(64, is_weight=is_weight).load_state_dict(state)


def test_random_state_round_trips_through_a_weights_only_checkpoint(tmp_path: Path) -> None:
    import random

    import numpy as np

    from dqnkit import rngstate

    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    torch.save(rngstate.capture(), tmp_path / "rng.pt")
    expected = (random.random(), np.random.uniform(), np.random.normal(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    rngstate.restore(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.uniform(), np.random.normal(), torch.rand(1).item()) == expected
