"""The pixel replay buffer: each frame stored once, the batches a naive buffer of stacks gives."""

from __future__ import annotations

import random
from typing import Any

import pytest
import torch

from conftest import collect_transitions

FIELDS = ("obs", "next_obs", "action", "reward", "done", "value_gamma")


@pytest.fixture(scope="module")
def buffers() -> tuple[Any, Any, Any, Any, int]:
    """DI-engine's DequeBuffer (whole stacks per transition), two FrameReplayBuffers (dedup windows of 4,096 and
    8 frames) and a PackedFrameReplayBuffer, 300 transitions each, fed the same real Breakout transitions (2 envs,
    random play: lives lost every few dozen steps, games cut at 400 frames) through dqnkit's 3-step enhancer and
    DI-engine's data_pusher. Returns them and the number of transitions pushed."""
    from ding.data import DequeBuffer
    from ding.framework.middleware import data_pusher

    from dqnkit.dingext.frames import FrameReplayBuffer, PackedFrameReplayBuffer
    from dqnkit.dingext.nstep import nstep_reward_enhancer

    naive, frames, small = DequeBuffer(size=300), FrameReplayBuffer(size=300), FrameReplayBuffer(size=300, window=8)
    packed = PackedFrameReplayBuffer(size=300)
    pushed: list[list[Any]] = []

    def feed(cfg: Any, task: Any) -> list[Any]:
        def keep(ctx: Any) -> None:
            pushed.append(list(ctx.trajectories))

        def hand_over_again(ctx: Any) -> None:  # data_pusher consumed ctx.trajectories
            ctx.trajectories = pushed[-1]

        pushers = [data_pusher(cfg, buffer) for buffer in (naive, frames, small, packed)]
        return [nstep_reward_enhancer(cfg), keep, *(m for p in pushers for m in (p, hand_over_again))]

    collect_transitions("breakout.py", 2, 12, feed, atari={"max_frames": 400})
    return naive, frames, small, packed, sum(map(len, pushed))


@pytest.fixture(scope="module", params=["frames", "packed"])
def fed(request: pytest.FixtureRequest, buffers: tuple[Any, Any, Any, Any, int]) -> tuple[Any, Any, int]:
    naive, frames, _, packed, pushed = buffers
    return naive, frames if request.param == "frames" else packed, pushed


def test_frame_buffer_holds_and_samples_what_a_buffer_of_stacks_does(fed: tuple[Any, Any, int]) -> None:
    naive, frames, pushed = fed
    assert frames.count() == naive.count() == 300 < pushed  # wrapped around
    ends = sum(bool(naive.get(p).data["done"]) for p in range(300))
    assert ends >= 5  # lost lives and cut games: stacks across episode boundaries
    for position in range(300):
        expected, got = naive.get(position).data, frames.get(position).data.transition()
        for key in FIELDS:
            assert torch.equal(got[key], expected[key]), (position, key)
    for seed in range(3):
        random.seed(seed)
        expected_rows = [d.data for d in naive.sample(32)]
        random.seed(seed)
        rows = [d.data for d in frames.sample(32)]
        batch = frames.gather(torch.tensor([row.slot for row in rows]))
        for key in FIELDS:
            assert torch.equal(batch[key], torch.stack([row[key] for row in expected_rows])), (seed, key)


def test_frame_buffer_keeps_about_one_frame_per_transition(buffers: tuple[Any, Any, Any, Any, int]) -> None:
    _, frames, _, packed, pushed = buffers
    stacked_bytes = 2 * 4 * 84 * 84  # obs and next_obs, uint8
    assert frames.frames.shape[1:] == (84, 84)
    assert frames._frames_pushed < 1.2 * pushed  # a frame a transition, a few more where episodes start
    assert frames.held_frame_bytes() / pushed < stacked_bytes / 6
    assert packed._frames_pushed == frames._frames_pushed
    assert packed.held_frame_bytes() < frames.held_frame_bytes() / 5  # Breakout's frames compress well


def test_a_small_window_drops_transitions_whose_frames_were_overwritten(
    buffers: tuple[Any, Any, Any, Any, int],
) -> None:
    """A dedup window of 8 frames stores most frames several times: the ring of frames fills before the ring of
    transitions, and the transitions left are still exactly the naive buffer's newest."""
    naive, _, frames, _, _ = buffers
    assert 0 < frames.count() < naive.count()
    offset = naive.count() - frames.count()
    for position in range(frames.count()):
        expected, got = naive.get(offset + position).data, frames.get(position).data.transition()
        for key in FIELDS:
            assert torch.equal(got[key], expected[key]), (position, key)


def test_frame_buffer_refuses_what_is_not_a_uint8_frame_stack() -> None:
    from dqnkit.dingext.frames import FrameReplayBuffer

    buffer = FrameReplayBuffer(size=4)
    with pytest.raises(ValueError, match="uint8 frame stacks"):
        buffer.push({"obs": torch.zeros(4, 84, 84), "next_obs": torch.zeros(4, 84, 84)})


def test_frame_buffer_state_round_trips_with_only_the_frames_it_holds(fed: tuple[Any, Any, int]) -> None:
    import io

    _, frames, _ = fed
    state = frames.state_dict()
    saved = io.BytesIO()
    torch.save(state, saved)
    assert len(saved.getvalue()) < 1.1 * frames.held_frame_bytes() + 100_000  # not the whole preallocated ring
    loaded = type(frames)(size=300)
    loaded.load_state_dict(torch.load(io.BytesIO(saved.getvalue()), weights_only=True))
    assert loaded.count() == frames.count()
    for position in (0, 150, 299):
        expected, got = frames.get(position).data.transition(), loaded.get(position).data.transition()
        for key in FIELDS:
            assert torch.equal(got[key], expected[key]), (position, key)
    with pytest.raises(ValueError, match="holds 300 transitions"):
        type(frames)(size=200).load_state_dict(state)
