"""The Atari preprocessing on real ALE games: ids, settings, lives, no-op starts and the frame cap."""

from __future__ import annotations

import numpy as np
import pytest

from dqnkit.atari import AtariGame, AtariSettings, atari_game, human_normalized
from dqnkit.errors import UserError


def test_ale_ids_name_their_game_and_other_ids_none() -> None:
    assert atari_game("ALE/Pong-v5") == "pong"
    assert atari_game("PongNoFrameskip-v4") == "pong"
    assert atari_game("ALE/SpaceInvaders-v5") == "space_invaders"
    assert atari_game("CartPole-v1") is None
    assert atari_game("LunarLander-v3") is None


def test_settings_refuse_an_unknown_key_with_the_closest_one() -> None:
    with pytest.raises(UserError, match=r"env.atari.noop_maxx; did you mean env.atari.noop_max\?"):
        AtariSettings.from_config({"noop_maxx": 10})
    assert AtariSettings.from_config({"frame_stack": "3"}).obs_shape == [3, 84, 84]


def test_evaluation_keeps_whole_games_and_real_scores() -> None:
    settings = AtariSettings(noop_max=7, sticky_actions=0.25)
    evaluation = settings.for_evaluation()
    assert not evaluation.end_on_life_loss and not evaluation.clip_rewards
    assert (evaluation.noop_max, evaluation.sticky_actions, evaluation.max_frames) == (7, 0.25, 108_000)


def test_human_normalized_score_is_zero_at_random_and_one_at_human() -> None:
    assert human_normalized("pong", -20.7) == pytest.approx(0.0)
    assert human_normalized("pong", 14.6) == pytest.approx(1.0)
    assert human_normalized("breakout", 30.5) == pytest.approx(1.0)
    assert human_normalized("tetris", 1.0) is None


def _start_frames(noop_max: int, seeds: range) -> list[int]:
    """The emulator frame each game starts from, after its reset's no-ops."""
    game = AtariGame("pong", AtariSettings(noop_max=noop_max), training=False)
    try:
        starts = []
        for seed in seeds:
            obs, info = game.reset(seed=seed)
            assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
            starts.append(info["frame"])
        return starts
    finally:
        game.close()


def test_no_op_starts_vary_by_seed_up_to_30() -> None:
    without = _start_frames(0, range(8))
    with_noops = _start_frames(30, range(8))
    assert len(set(without)) == 1
    assert len(set(with_noops)) > 3
    assert all(without[0] <= start <= without[0] + 30 for start in with_noops)


def test_the_frame_cap_ends_a_game() -> None:
    game = AtariGame("pong", AtariSettings(max_frames=400), training=False)
    rng = np.random.default_rng(0)
    try:
        _, start = game.reset(seed=0)
        steps, terminated, truncated = 0, False, False
        while not (terminated or truncated) and steps < 1000:
            _, _, terminated, truncated, info = game.step(int(rng.integers(game.action_space.n)))
            steps += 1
    finally:
        game.close()
    assert truncated and not terminated
    assert steps == 400 // 4  # 4 frames an action
    assert info["frame"] - start["frame"] <= 400


def test_an_action_outside_the_game_is_refused_rather_than_hanging() -> None:
    game = AtariGame("pong", AtariSettings(), training=False)
    try:
        game.reset(seed=0)
        with pytest.raises(ValueError, match="action 6 outside pong's 6 actions"):
            game.step(6)
    finally:
        game.close()


def test_in_training_a_lost_life_ends_the_episode_but_not_the_game() -> None:
    game = AtariGame("breakout", AtariSettings(), training=True)
    rng = np.random.default_rng(0)
    try:
        _, info = game.reset(seed=0)
        lives = [info["lives"]]
        for _ in range(3000):
            _, _, terminated, truncated, info = game.step(int(rng.integers(game.action_space.n)))
            if terminated or truncated:
                _, info = game.reset(seed=1)
                lives.append(info["lives"])
                if len(lives) == 6:
                    break
    finally:
        game.close()
    assert lives == [5, 4, 3, 2, 1, 5]  # four lost lives continue the game; the fifth ends it and a new one starts


def test_the_screen_twin_plays_the_same_game() -> None:
    """What --render and --video show: a second emulator fed the same seeds and actions, as full RGB screens; its
    scores, lives and frame counts follow the preprocessed game's step for step."""
    from dqnkit.atari import vector_games

    settings = AtariSettings(sticky_actions=0.25)  # sticky actions draw from the seed's generator too
    games = [vector_games("breakout", settings, 1, training=False, screen=screen) for screen in (False, True)]
    rng = np.random.default_rng(0)
    try:
        observations = [g.reset(seed=3)[0] for g in games]
        assert observations[0].shape == (1, 4, 84, 84) and observations[1].shape == (1, 1, 210, 160, 3)
        for _ in range(400):
            actions = rng.integers(4, size=1)
            steps = [g.step(actions) for g in games]
            (_, r0, t0, c0, i0), (_, r1, t1, c1, i1) = steps
            assert (r0, t0, c0) == (r1, t1, c1)
            assert i0["lives"] == i1["lives"] and i0["episode_frame_number"] == i1["episode_frame_number"]
    finally:
        for g in games:
            g.close()


def test_render_shows_the_screen_and_optionally_the_agents_view() -> None:
    for agent_view, width in ((False, 160), (True, 160 + 168)):
        game = AtariGame("pong", AtariSettings(), training=False, render_mode="rgb_array", agent_view=agent_view)
        try:
            game.reset(seed=0)
            game.step(0)
            frame = game.render()
        finally:
            game.close()
        assert frame.shape == (210, width, 3) and frame.dtype == np.uint8
        assert frame[:, :160].std() > 0  # a real screen, not a blank
