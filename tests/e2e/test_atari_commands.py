"""Pong from pixels through the commands a user runs: train, resume with the replay buffer, export, evaluate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import CONFIGS, REPO, assert_user_error, cli, eval_without_torch
from dqnkit.checkpoint import build_checkpoint, load_checkpoint, save_checkpoint

TINY = ["--set", "env.collector_env_num=4", "--set", "env.evaluator_env_num=2", "--set", "env.n_evaluator_episode=2"]


@pytest.fixture(scope="module")
def pong_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """256 env steps of Pong from the CLI, evaluated every 64 updates by the protocol (full games)."""
    workdir = tmp_path_factory.mktemp("pong")
    args = ["--config", str(CONFIGS / "pong.py"), "--exp-name", "pong", "--max-env-steps", "256", *TINY]
    result = cli("dqn-train", *args, "--set", "policy.eval.evaluator.eval_freq=64", cwd=workdir)
    assert result.returncode == 0, result.stderr
    return workdir / "runs" / "pong"


def test_a_pong_run_writes_its_folder_and_resumes_with_its_replay_buffer(pong_run: Path) -> None:
    config = yaml.safe_load((pong_run / "config.yaml").read_text())
    assert config["env"]["atari"]["frame_stack"] == 4 and config["env"]["atari"]["noop_max"] == 30
    assert config["policy"]["model"]["obs_shape"] == [4, 84, 84] and config["policy"]["model"]["action_shape"] == 6
    assert config["dqnkit"]["save_replay"] is True
    assert config["dqnkit"]["eval_epsilon"] == 0.05  # evaluations play the protocol: the stop rule's games
    for name in ("final.pth.tar", "final.replay.pth.tar", "best.pth.tar", "metrics.csv", "summary.json"):
        assert (pong_run / name).is_file(), name
    adam = load_checkpoint(pong_run / "final.pth.tar")["optimizer"]["param_groups"][0]
    assert adam["eps"] == config["policy"]["learn"]["adam_eps"] == 1.5e-4  # configs/pong.py's, not torch's 1e-8
    first = json.loads((pong_run / "summary.json").read_text())
    assert first["last_eval"]["mean"] <= -15  # an untrained agent loses whole games
    result = cli("dqn-train", "--resume", str(pong_run), "--max-env-steps", "384", cwd=pong_run.parent.parent)
    assert result.returncode == 0, result.stderr
    refilled = [line for line in result.stderr.splitlines() if "refilled the replay buffer" in line]
    assert refilled and f"with {first['env_steps'] - 2 * 4:,} transitions" in refilled[0], result.stderr
    assert json.loads((pong_run / "summary.json").read_text())["env_steps"] >= 384


@pytest.fixture(scope="module")
def pong_export(pong_run: Path) -> Path:
    result = cli("dqn-export", "--ckpt", str(pong_run / "best.pth.tar"), "--out", str(pong_run / "export"))
    assert result.returncode == 0, result.stderr
    return pong_run / "export"


def test_live_units_tells_a_seeing_network_from_one_whose_first_layer_died(pong_run: Path, tmp_path: Path) -> None:
    state = load_checkpoint(pong_run / "final.pth.tar")
    state["model"]["encoder.main.0.bias"] = state["model"]["encoder.main.0.bias"] - 1000.0  # every unit negative
    keys = ("env_step", "train_iter", "config", "last_eval", "best_eval", "last_eval_iter", "wall_seconds")
    dead = build_checkpoint(state, **{key: state[key] for key in keys})
    save_checkpoint(dead, tmp_path / "dead.pth.tar")
    script = [sys.executable, str(REPO / "scripts" / "live_units.py"), str(pong_run), str(tmp_path / "dead.pth.tar")]
    proc = subprocess.run([*script, "--frames", "16", "--out", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(next(tmp_path.glob("live-units-*.json")).read_text())["checkpoints"]
    assert [Path(r["checkpoint"]).name for r in rows] == ["best.pth.tar", "final.pth.tar", "dead.pth.tar"]
    assert all(0.2 < r["live_units"][0] < 0.8 for r in rows[:2])  # a young network sees the screen
    assert rows[2]["live_units"][0] == 0 and rows[2]["q_std_over_frames"] == 0  # one answer for every screen
    assert "| pong/final.pth.tar |" in next(tmp_path.glob("live-units-*.md")).read_text()


def test_the_export_takes_uint8_frames_and_records_the_preprocessing(pong_export: Path) -> None:
    report = json.loads((pong_export / "export.json").read_text())
    assert report["inputs"] == {"obs": "uint8 [batch, 4, 84, 84]"}
    assert report["atari"]["screen_size"] == 84 and report["atari"]["end_on_life_loss"] is True
    for fmt in ("torchscript", "onnx"):
        assert report["parity"][fmt]["passed"] and report["parity"][fmt]["observations"] == 4096


def test_onnx_alone_plays_pong_as_the_checkpoint_does(pong_run: Path, pong_export: Path, tmp_path: Path) -> None:
    """The ONNX model rebuilds the preprocessing from its metadata, with neither torch nor DI-engine importable,
    and plays the protocol's episodes (epsilon 0.05, no-op starts) exactly as the checkpoint does while it is
    recorded: the real screen with the agent's view beside it."""
    import imageio.v2 as imageio

    args = [str(pong_export / "model.onnx"), "--episodes", "2", "--envs", "2", "--json", str(tmp_path / "onnx.json")]
    proc = eval_without_torch(args, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "human-normalized score" in proc.stdout
    video = tmp_path / "pong.mp4"
    watched = ["--video", str(video), "--agent-view", "--json", str(tmp_path / "ckpt.json")]
    result = cli("dqn-eval", str(pong_run / "best.pth.tar"), "--episodes", "2", *watched)
    assert result.returncode == 0, result.stderr
    onnx, ckpt = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("onnx", "ckpt"))
    assert onnx["epsilon"] == ckpt["epsilon"] == 0.05
    episodes = [[(e["episode_return"], e["length"]) for e in r["episodes"]] for r in (onnx, ckpt)]
    assert episodes[0] == episodes[1]
    assert all(length > 500 for _, length in episodes[0])  # whole games of 21 points, not lives or capped
    reader = imageio.get_reader(video)
    try:
        frame = reader.get_data(0)
        assert reader.get_meta_data()["fps"] == 15  # 60 emulator frames a second, 4 an action
    finally:
        reader.close()
    assert frame.shape == (216, 328, 3)  # the 210x160 screen and the doubled 84x84 view, padded to 8x8 blocks


def test_a_pixel_model_on_a_vector_env_is_refused(pong_export: Path) -> None:
    result = cli("dqn-eval", str(pong_export / "model.onnx"), "--env", "CartPole-v1")
    assert_user_error(result, "takes Atari frames", "CartPole-v1 is not an Atari game")


@pytest.mark.contract
def test_an_unknown_atari_game_gets_the_closest_id(tmp_path: Path) -> None:
    result = cli("dqn-train", "--config", str(CONFIGS / "pong.py"), "--set", "env.env_id=ALE/Pongg-v5", cwd=tmp_path)
    assert_user_error(result, "unknown environment id 'ALE/Pongg-v5'", "ALE/Pong-v5")


@pytest.mark.contract
def test_atari_preprocessing_on_a_vector_env_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "cartpole_atari.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "main_config": {"env": {"env_id": "CartPole-v1", "atari": {"noop_max": 30}}},
                "create_config": {"policy": {"type": "dqn"}},
            }
        )
    )
    result = cli("dqn-train", "--config", str(config), cwd=tmp_path)
    assert_user_error(result, "env.atari", "CartPole-v1 is not an Atari game")
