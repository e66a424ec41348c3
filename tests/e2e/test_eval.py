"""dqn-eval and dqn-plot: reproducible evaluation of every model form, videos, a real window, learning curves."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_user_error, cli, eval_without_torch

EPISODE_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+(-?\d+\.\d+)\s+(\d+)\s+(\S+)$")


def _episode_rows(stdout: str) -> list[tuple[int, float, int]]:
    rows = []
    for line in stdout.splitlines():
        m = EPISODE_ROW.match(line)
        if m:
            rows.append((int(m.group(2)), float(m.group(3)), int(m.group(4))))
    return rows


def test_checkpoint_torchscript_and_onnx_give_identical_returns(
    trained_cartpole: Path, exported_cartpole: Path, tmp_path: Path
) -> None:
    reports = {}
    for name, model in (
        ("ckpt", trained_cartpole),
        ("pt", exported_cartpole / "model.pt"),
        ("onnx", exported_cartpole / "model.onnx"),
    ):
        result = cli("dqn-eval", str(model), "--episodes", "6", "--seed", "7", "--json", str(tmp_path / f"{name}.json"))
        assert result.returncode == 0, result.stderr
        reports[name] = json.loads((tmp_path / f"{name}.json").read_text())
        assert [r[0] for r in _episode_rows(result.stdout)] == list(range(7, 13))
    returns = {k: [e["episode_return"] for e in r["episodes"]] for k, r in reports.items()}
    assert returns["ckpt"] == returns["pt"] == returns["onnx"]
    assert {r["kind"] for r in reports.values()} == {"checkpoint", "torchscript", "onnx"}

    parallel = cli(
        "dqn-eval",
        str(exported_cartpole / "model.onnx"),
        "--episodes",
        "6",
        "--seed",
        "7",
        "--envs",
        "3",
        "--json",
        str(tmp_path / "par.json"),
    )
    assert parallel.returncode == 0, parallel.stderr
    assert [e["episode_return"] for e in json.loads((tmp_path / "par.json").read_text())["episodes"]] == returns["onnx"]


def test_json_report_matches_the_printed_one(exported_cartpole: Path, tmp_path: Path) -> None:
    result = cli(
        "dqn-eval",
        str(exported_cartpole / "model.onnx"),
        "--episodes",
        "4",
        "--epsilon",
        "0.1",
        "--json",
        str(tmp_path / "r.json"),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    printed = _episode_rows(result.stdout)
    assert printed == [(e["seed"], round(e["episode_return"], 2), e["length"]) for e in report["episodes"]]
    stats = report["stats"]
    for key in ("mean", "std", "median", "min", "max"):
        assert f"{stats[key]:.2f}" in result.stdout
    assert f"success {stats['success_rate']:.0%}" in result.stdout
    assert stats["mean"] == pytest.approx(np.mean([e["episode_return"] for e in report["episodes"]]))
    assert report["epsilon"] == 0.1 and report["reward_threshold"] == 475


def test_mp4_video_has_one_frame_per_step_plus_reset(exported_cartpole: Path, tmp_path: Path) -> None:
    import imageio.v3 as iio

    video = tmp_path / "agent.mp4"
    result = cli(
        "dqn-eval",
        str(exported_cartpole / "model.onnx"),
        "--episodes",
        "2",
        "--video",
        str(video),
        "--json",
        str(tmp_path / "r.json"),
    )
    assert result.returncode == 0, result.stderr
    lengths = [e["length"] for e in json.loads((tmp_path / "r.json").read_text())["episodes"]]
    frames = iio.imread(video)
    assert frames.shape == (sum(lengths) + len(lengths), 400, 600, 3)
    assert frames.std() > 5, "blank video"
    assert not list(tmp_path.glob(".*partial*"))


def test_gif_video_lasts_one_frame_per_step_at_the_env_fps(exported_cartpole: Path, tmp_path: Path) -> None:
    from PIL import Image

    gif = tmp_path / "agent.gif"
    result = cli(
        "dqn-eval",
        str(exported_cartpole / "model.onnx"),
        "--episodes",
        "1",
        "--video",
        str(gif),
        "--json",
        str(tmp_path / "r.json"),
    )
    assert result.returncode == 0, result.stderr
    length = json.loads((tmp_path / "r.json").read_text())["episodes"][0]["length"]
    image = Image.open(gif)
    assert image.size == (600, 400)
    total_ms = 0
    try:
        while True:  # the GIF encoder merges identical consecutive frames, so count time, not frames
            total_ms += image.info["duration"]
            image.seek(image.tell() + 1)
    except EOFError:
        pass
    assert total_ms == pytest.approx((length + 1) * 1000 / 50, abs=1)


def test_render_without_a_display_records_a_video_instead(exported_cartpole: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    shutil.copy(exported_cartpole / "model.onnx", model)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dqn-eval"), str(model), "--render", "--episodes", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no display found: recording to" in proc.stderr
    assert len(list(tmp_path.glob("eval-*.mp4"))) == 1


@pytest.mark.display
def test_render_opens_a_real_window_under_xvfb(exported_cartpole: Path, tmp_path: Path) -> None:
    if not shutil.which("Xvfb") or not shutil.which("import"):
        pytest.skip("needs Xvfb and ImageMagick's import (.ci/run installs them)")
    display = ":87"
    xvfb = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        env = {**os.environ, "DISPLAY": display}
        env.pop("SDL_VIDEODRIVER", None)
        viewer = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dqn-eval"),
                str(exported_cartpole / "model.onnx"),
                "--render",
                "--episodes",
                "1",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        shot = tmp_path / "shot.png"
        deadline = time.monotonic() + 60
        pixels = None
        while time.monotonic() < deadline and viewer.poll() is None:
            time.sleep(1.0)
            subprocess.run(
                ["import", "-window", "root", "-crop", "600x400+0+0", str(shot)],
                env=env,
                capture_output=True,
                timeout=30,
            )
            if shot.is_file():
                from PIL import Image

                pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
                if pixels.std() > 10:
                    break
        _, err = viewer.communicate(timeout=60)
        assert viewer.returncode == 0, err
        assert "recording" not in err, "a window was expected, not a video"
        assert pixels is not None and pixels.std() > 10, "the window was blank"
        assert pixels.reshape(-1, 3).max(0).min() > 200, "no white background of the CartPole scene"
    finally:
        xvfb.send_signal(signal.SIGTERM)
        xvfb.wait(timeout=10)


def test_onnx_evaluation_imports_neither_torch_nor_ding(exported_cartpole: Path) -> None:
    proc = eval_without_torch([str(exported_cartpole / "model.onnx"), "--episodes", "2", "--quiet"], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "2 episodes" in proc.stdout


def test_without_a_model_the_newest_run_is_evaluated(trained_cartpole: Path) -> None:
    result = cli("dqn-eval", "--episodes", "1", "--quiet", cwd=trained_cartpole.parent.parent)
    assert result.returncode == 0, result.stderr
    assert f"evaluating runs/{trained_cartpole.name}" in result.stderr


def test_plot_writes_a_png_of_the_expected_size(trained_cartpole: Path, tmp_path: Path) -> None:
    out = tmp_path / "curves.png"
    result = cli("dqn-plot", str(trained_cartpole), str(trained_cartpole), "--out", str(out), "--title", "two")
    assert result.returncode == 0, result.stderr
    header = out.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1400, 560)


# --- bad input ---------------------------------------------------------------------------------------------------


@pytest.mark.contract
def test_a_file_that_is_not_a_model(tmp_path: Path) -> None:
    for name in ("model.onnx", "model.pt", "best.pth.tar"):
        bogus = tmp_path / name
        bogus.write_bytes(b"not a model at all\n" * 10)
        assert_user_error(cli("dqn-eval", str(bogus)), "not a")


def test_a_model_whose_obs_shape_does_not_fit_the_env(exported_cartpole: Path) -> None:
    result = cli("dqn-eval", str(exported_cartpole / "model.onnx"), "--env", "LunarLander-v2")
    assert_user_error(result, "expects observations [4]", "LunarLander-v2")


def test_unknown_env_id(exported_cartpole: Path) -> None:
    assert_user_error(
        cli("dqn-eval", str(exported_cartpole / "model.onnx"), "--env", "CartPoel-v1"),
        "unknown environment id",
        "CartPole-v1",
    )


def test_unwritable_video_path(exported_cartpole: Path, tmp_path: Path) -> None:
    model = str(exported_cartpole / "model.onnx")
    assert_user_error(cli("dqn-eval", model, "--video", str(tmp_path / "missing" / "v.mp4")), "does not exist")
    assert_user_error(cli("dqn-eval", model, "--video", str(tmp_path / "v.avi")), ".mp4 or .gif")


def test_zero_episodes(exported_cartpole: Path) -> None:
    assert_user_error(cli("dqn-eval", str(exported_cartpole / "model.onnx"), "--episodes", "0"), "--episodes")


@pytest.mark.contract
def test_plot_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    assert_user_error(cli("dqn-plot", str(tmp_path), "--out", str(tmp_path / "x.png")), "no metrics.csv")


@pytest.mark.contract
@pytest.mark.parametrize(
    ("runs", "out", "fragment"),
    [
        (["a_run", "missing"], "x.png", "missing has no metrics.csv"),
        (["a_run", "a_file"], "x.png", "a_file has no metrics.csv"),
        (["a_run"], "x.txt", "--out x.txt: the file must end in .png"),
        (["a_run"], "a_file/x.png", "--out a_file/x.png: a_file is not a folder"),
        (["a_run"], "nowhere/x.png", "--out nowhere/x.png: nowhere does not exist"),
    ],
)
def test_aggregate_plot_mistakes_are_one_line_before_any_drawing(
    tmp_path: Path, runs: list[str], out: str, fragment: str
) -> None:
    (tmp_path / "a_run").mkdir()
    header = "env_step,train_iter,wall_seconds,eval_mean,eval_std,eval_min,eval_max,loss"
    (tmp_path / "a_run" / "metrics.csv").write_text(f"{header}\n10,1,0.5,1.0,0.0,1.0,1.0,0.1\n")
    (tmp_path / "a_file").write_text("")
    result = cli("dqn-plot", *runs, "--aggregate", "--out", out, cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not list(tmp_path.glob("**/*.png"))


def test_lunarlander_v2_without_decorative_particles_plays_bit_identical_episodes() -> None:
    """dqnkit's LunarLander-v2 creates no flame particles (3x faster physics): every observation and reward must
    equal gym's own env, under gym's heuristic lander (landings, leg contacts) and under random actions (crashes,
    every engine)."""
    import gym
    from gym.envs.box2d.lunar_lander import heuristic

    from dqnkit.envs import EnvRef, make_raw_env

    most_particles = 0
    random_actions = np.random.default_rng(0)
    for seed in range(12):
        stock = gym.make("LunarLander-v2", new_step_api=True, disable_env_checker=True)
        ours = make_raw_env(EnvRef("LunarLander-v2"))
        obs_stock, obs_ours = stock.reset(seed=seed), ours.reset(seed=seed)
        done = False
        while not done:
            action = heuristic(stock.unwrapped, obs_stock) if seed < 8 else int(random_actions.integers(4))
            obs_stock, r_stock, term, trunc, _ = stock.step(action)
            obs_ours, r_ours, *_ = ours.step(action)
            assert np.array_equal(obs_stock, obs_ours) and r_stock == r_ours
            assert ours.unwrapped.particles == []
            most_particles = max(most_particles, len(stock.unwrapped.particles))
            done = term or trunc
    assert most_particles > 100  # what gym's env carries along without a window


def test_two_models_are_compared_on_the_same_episodes(exported_cartpole: Path, tmp_path: Path) -> None:
    a, b = exported_cartpole / "model.onnx", exported_cartpole / "model.pt"
    result = cli("dqn-eval", str(a), str(b), "--episodes", "4", "--json", str(tmp_path / "c.json"), "--quiet")
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "c.json").read_text())
    assert [m["kind"] for m in data["models"]] == ["onnx", "torchscript"]
    comparison = data["comparison"]
    assert comparison["mean_difference"] == 0.0 and comparison["difference_ci95"] == [0.0, 0.0]  # the same network
    assert "mean return difference +0.00; 95% CI +0.00 to +0.00 over 4 paired episodes" in result.stdout
    for stats in (m["stats"] for m in data["models"]):
        low, high = stats["mean_ci95"]
        assert low <= stats["mean"] <= high


@pytest.mark.contract
def test_more_than_two_models_or_a_window_for_two() -> None:
    assert_user_error(cli("dqn-eval", "a.onnx", "b.onnx", "c.onnx"), "3 models given")
    assert_user_error(cli("dqn-eval", "a.onnx", "b.onnx", "--render"), "--render and --video show one model")


def test_two_models_of_different_envs_are_refused_before_either_plays(
    exported_cartpole: Path, tiny_run, tmp_path: Path
) -> None:
    lunar = tiny_run("lunarlander.py")
    started = time.monotonic()
    result = cli("dqn-eval", str(exported_cartpole / "model.onnx"), str(lunar), "--episodes", "50", "--seed", "3")
    assert_user_error(result, "plays CartPole-v1", "plays LunarLander-v2", "needs two models of one env")
    assert result.stdout == "" and time.monotonic() - started < 60  # no episode was played
    forced = cli("dqn-eval", str(exported_cartpole / "model.onnx"), str(lunar), "--env", "CartPole-v1")
    assert_user_error(forced, "expects observations [8] and 4 actions, but CartPole-v1 has [4] and 2")
