"""dqn-train from the command line: real DI-engine, real CartPole, real files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import CONFIGS, assert_user_error, cli, help_without_heavy_imports

CHECKPOINT_KEYS = {
    "model",
    "target_model",
    "optimizer",
    "env_step",
    "train_iter",
    "config",
    "versions",
    "best_eval",
}


@pytest.mark.contract
def test_help_is_fast_because_it_imports_neither_ding_nor_torch() -> None:
    text = help_without_heavy_imports("train")
    for flag in (
        "--config",
        "--seed",
        "--exp-name",
        "--runs-dir",
        "--device",
        "--max-env-steps",
        "--max-train-iters",
        "--stop-value",
        "--env-manager",
        "--set",
        "--resume",
        "--quiet",
    ):
        assert flag in text


def test_cartpole_trains_to_its_stop_value_and_fills_the_run_folder(trained_cartpole: Path) -> None:
    run = trained_cartpole
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_eval"] >= 195
    assert summary["env_steps"] > 0 and summary["train_iters"] > 0 and summary["wall_seconds"] > 0
    assert set(summary["versions"]) == {"dqnkit", "ding", "torch"}
    assert summary["torch_threads"] == 1  # dqnkit's default
    for name in ("config.py", "config.yaml", "run_config.yaml", "command.txt", "metrics.csv", "curve.png"):
        assert (run / name).is_file(), name
    assert list(run.glob("events.out.tfevents.*")), "no TensorBoard event file"
    assert (run / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "dqn-train --config" in (run / "command.txt").read_text()
    assert yaml.safe_load((run / "config.yaml").read_text())["env"]["env_id"] == "CartPole-v1"

    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert list(rows[0]) == [
        "env_step",
        "train_iter",
        "wall_seconds",
        "eval_mean",
        "eval_std",
        "eval_min",
        "eval_max",
        "loss",
    ]
    assert float(rows[-1]["eval_mean"]) >= 195
    assert [int(r["env_step"]) for r in rows] == sorted(int(r["env_step"]) for r in rows)

    # Evaluations run beside training. The result is acted on in the first iteration that starts eval_lag train
    # iterations (a quarter of configs/cartpole.py's eval_freq of 100, as config.yaml records) past the evaluated
    # weights; that iteration still trains its update_per_collect (5) updates before the run stops.
    assert yaml.safe_load((run / "config.yaml").read_text())["dqnkit"]["eval_lag"] == 25
    best = torch.load(run / "best.pth.tar", weights_only=True)
    assert best["train_iter"] == int(rows[-1]["train_iter"])
    assert 25 + 5 <= summary["train_iters"] - best["train_iter"] < 25 + 2 * 5

    # On a pipe the progress display prints one line per evaluation, then the summary line.
    shown = (run.parent.parent / "dqn-train.stderr").read_text().splitlines()
    progress = [line for line in shown if line.startswith("env steps ")]
    assert len(progress) == len(rows), shown
    assert all(" steps/s | eval " in line and "ETA" in line for line in progress[1:]), progress
    assert shown[-1].startswith("dqnkit: reached the stop value")


def test_every_checkpoint_kind_exists_and_loads_with_weights_only(trained_cartpole: Path) -> None:
    names = ["best.pth.tar", "latest.pth.tar", "final.pth.tar"]
    periodic = sorted(trained_cartpole.glob("iteration_*.pth.tar"))
    assert 1 <= len(periodic) <= 2, "keep_periodic=2 in configs/cartpole.py"
    for path in [trained_cartpole / n for n in names] + periodic:
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert set(state) >= CHECKPOINT_KEYS, path
        assert state["config"]["env"]["env_id"] == "CartPole-v1"
        assert state["config"]["policy"]["model"]["action_shape"] == 2
    final = torch.load(trained_cartpole / "final.pth.tar", weights_only=True)
    summary = json.loads((trained_cartpole / "summary.json").read_text())
    assert final["env_step"] == summary["env_steps"] and final["train_iter"] == summary["train_iters"]


@pytest.mark.parametrize("replay", ["uniform", "prioritized"])
def test_resume_continues_counters_and_refills_the_buffer_its_first_updates_sample(tmp_path: Path, replay: str) -> None:
    """CartPole collects 32 env steps per iteration and trains on batches of 64: a resumed run whose buffer started
    empty would need two collections before its first update; refilled, the first one trains."""
    prioritized = ["--set", "policy.priority=true", "--set", "policy.priority_IS_weight=true"]
    first = cli(
        "dqn-train",
        "--config",
        str(CONFIGS / "cartpole.py"),
        *(prioritized if replay == "prioritized" else []),
        "--exp-name",
        "r",
        "--stop-value",
        "1e9",
        "--max-train-iters",
        "150",
        "--quiet",
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    run = tmp_path / "runs" / "r"
    before = torch.load(run / "final.pth.tar", weights_only=True)
    assert before["train_iter"] > 150 and "random_state" in before
    saved = torch.load(run / "final.replay.pth.tar", weights_only=True)
    assert saved["env_step"] == before["env_step"] and ("weights" in saved["buffer"]) == (replay == "prioritized")

    second = cli("dqn-train", "--resume", str(run), "--max-train-iters", str(before["train_iter"] + 1), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert f"refilled the replay buffer with {before['env_step']:,} transitions from final.replay.pth.tar" in (
        second.stderr
    )
    after = torch.load(run / "final.pth.tar", weights_only=True)
    assert after["env_step"] == before["env_step"] + 32 and after["train_iter"] == before["train_iter"] + 5
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    steps = [int(r["env_step"]) for r in rows]
    assert steps == sorted(steps), "metrics after resume continue from the checkpoint's counters"
    assert (run / "command.txt").read_text().count("dqn-train") == 2


def test_yaml_config_and_set_overrides_are_applied(tmp_path: Path) -> None:
    result = cli(
        "dqn-train",
        "--config",
        str(CONFIGS / "cartpole_plain.yaml"),
        "--exp-name",
        "y",
        "--set",
        "policy.learn.learning_rate=5e-4",
        "--set",
        "policy.learn.batch_size=32",
        "--set",
        "dqnkit.torch_threads=2",
        "--set",
        "dqnkit.max_env_steps=null",  # null clears a limit
        "--max-train-iters",
        "20",
        "--stop-value",
        "1e9",
        "--seed",
        "3",
        "--quiet",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    compiled = yaml.safe_load((tmp_path / "runs" / "y" / "config.yaml").read_text())
    assert compiled["policy"]["learn"]["learning_rate"] == 5e-4
    assert compiled["policy"]["learn"]["batch_size"] == 32
    assert compiled["policy"]["model"]["dueling"] is False
    assert compiled["seed"] == 3
    assert compiled["dqnkit"]["max_env_steps"] is None
    assert json.loads((tmp_path / "runs" / "y" / "summary.json").read_text())["torch_threads"] == 2


def test_a_step_limit_keeps_the_evaluation_still_under_way(tmp_path: Path) -> None:
    """configs/cartpole.py evaluates every 100 train iterations (5 per iteration) and acts on each 25 later: the run
    stops at train iter 305, before the evaluation made at 300 is due, and records it before it exits."""
    result = cli(
        "dqn-train",
        "--config",
        str(CONFIGS / "cartpole.py"),
        "--max-train-iters",
        "300",
        "--stop-value",
        "1e9",
        "--quiet",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    run = tmp_path / "runs" / "cartpole_dqn_seed0"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "max_train_iters" and summary["train_iters"] == 305
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["train_iter"]) for r in rows] == [0, 100, 200, 300]
    assert summary["last_eval"]["mean"] == pytest.approx(float(rows[-1]["eval_mean"]), abs=1e-3)


@pytest.mark.parametrize("config", ["lunarlander.py", "lunarlander_v3.py"])
def test_lunarlander_configs_train_a_few_steps(tiny_run, config: str) -> None:
    summary = json.loads((tiny_run(config) / "summary.json").read_text())
    assert summary["stop_reason"] == "max_env_steps"
    assert summary["env_id"] == ("LunarLander-v2" if config == "lunarlander.py" else "LunarLander-v3")


def test_subprocess_env_manager_trains(tmp_path: Path) -> None:
    result = cli(
        "dqn-train",
        "--config",
        str(CONFIGS / "cartpole.py"),
        "--exp-name",
        "sp",
        "--env-manager",
        "subprocess",
        "--max-env-steps",
        "500",
        "--quiet",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    compiled = yaml.safe_load((tmp_path / "runs" / "sp" / "config.yaml").read_text())
    assert compiled["env"]["manager"]["type"] == "subprocess"


def test_prioritized_replay_from_dings_own_config_keys(tmp_path: Path) -> None:
    """policy.priority turns on DI-engine's PriorityExperienceReplay buffer middleware; the learner hands each
    update's TD errors back to the buffer while online_logger logs every 10 iterations."""
    result = cli(
        "dqn-train",
        "--config",
        str(CONFIGS / "cartpole.py"),
        "--exp-name",
        "per",
        "--set",
        "policy.priority=true",
        "--set",
        "policy.priority_IS_weight=true",
        "--set",
        "dqnkit.log_freq=10",
        "--max-env-steps",
        "1500",
        "--quiet",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "runs" / "per" / "summary.json").read_text())
    assert summary["stop_reason"] == "max_env_steps" and summary["train_iters"] > 100
    with (tmp_path / "runs" / "per" / "metrics.csv").open() as f:
        losses = [row["loss"] for row in csv.DictReader(f)]
    assert all(float(loss) >= 0 for loss in losses[1:]) and len(losses) > 1


def test_cartpole_trains_to_its_stop_value_with_the_munchausen_target(tmp_path: Path) -> None:
    result = cli(
        "dqn-train",
        "--config",
        str(CONFIGS / "cartpole.py"),
        "--exp-name",
        "mdqn",
        "--set",
        "policy.learn.td_target=munchausen",
        "--max-env-steps",
        "20000",
        "--quiet",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    run = tmp_path / "runs" / "mdqn"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "stop_value", summary
    learn = yaml.safe_load((run / "config.yaml").read_text())["policy"]["learn"]
    assert (learn["td_target"], learn["munchausen_tau"], learn["munchausen_alpha"]) == ("munchausen", 0.3, 0.9)


# --- bad input: one line, exit code 2, nothing half-written ---------------------------------------------------


def _bad(tmp_path: Path, *args: str, fragments: tuple[str, ...]) -> None:
    result = cli("dqn-train", *args, cwd=tmp_path)
    assert_user_error(result, *fragments)
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a failed start left a run folder behind"


@pytest.mark.contract
def test_missing_config(tmp_path: Path) -> None:
    _bad(tmp_path, "--config", "nope.py", fragments=("config file not found", "nope.py"))


@pytest.mark.contract
def test_a_value_out_of_range(tmp_path: Path) -> None:
    """Every range is checked in process (tests/unit/test_validate.py); the command line turns one into a line."""
    _bad(
        tmp_path,
        "--config",
        str(CONFIGS / "cartpole.py"),
        "--set",
        "policy.learn.learning_rate=-0.001",
        fragments=("policy.learn.learning_rate must be a number > 0", "not -0.001"),
    )


def test_existing_exp_name_is_not_overwritten(trained_cartpole: Path) -> None:
    result = cli(
        "dqn-train",
        "--config",
        str(CONFIGS / "cartpole.py"),
        "--exp-name",
        trained_cartpole.name,
        cwd=trained_cartpole.parent.parent,
    )
    assert_user_error(result, "already exists", "--resume")


def test_best_checkpoint_holds_the_weights_its_evaluation_scored(tmp_path: Path) -> None:
    """With DI-engine's fixed evaluation start states, replaying them with dqn-eval's evaluator reproduces
    best.pth.tar's recorded score exactly: the saved network is the one evaluated, not the one the learner
    trained further in the same iteration."""
    from dqnkit.evaluate import evaluate
    from dqnkit.train.pipeline import EVAL_SEED_OFFSET

    result = cli(
        "dqn-train",
        "--config",
        str(CONFIGS / "cartpole.py"),
        "--set",
        "dqnkit.fresh_eval_episodes=false",
        "--max-env-steps",
        "2500",
        "--quiet",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    best = tmp_path / "runs" / "cartpole_dqn_seed0" / "best.pth.tar"
    recorded = torch.load(best, weights_only=True)["last_eval"]
    # configs/cartpole.py: 4 evaluator envs, 4 episodes; env i replays seed + EVAL_SEED_OFFSET + i.
    replayed = evaluate(best, episodes=4, seed=EVAL_SEED_OFFSET, n_envs=4, log=lambda _: None).stats
    assert [replayed[k] for k in ("mean", "min", "max")] == pytest.approx([recorded[k] for k in ("mean", "min", "max")])


def test_training_twice_in_one_process_leaves_nothing_out_of_the_garbage_collectors_reach(tmp_path: Path) -> None:
    """dqnkit hides DI-engine's long-lived objects from the garbage collector while a run trains (gc.freeze), and
    flushes denormal floats to zero in its training loop; a notebook or script that trains again must get the
    finished run's objects back into collection, and its own float math back as it was."""
    code = (
        "import gc, torch\n"
        "from dqnkit.train.pipeline import train\n"
        "from dqnkit.train.plan import TrainOptions\n"
        "for name in ('a', 'b'):\n"
        f"    options = TrainOptions(config={str(CONFIGS / 'cartpole.py')!r}, runs_dir={str(tmp_path)!r},\n"
        "                           exp_name=name, max_env_steps=600, quiet=True)\n"
        "    assert train(options) == 0\n"
        "    print(name, gc.get_freeze_count(), (torch.full((1,), 1e-38) * 0.01).item() > 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["a", "0", "True", "b", "0", "True"]
    assert (tmp_path / "a" / "final.pth.tar").is_file() and (tmp_path / "b" / "final.pth.tar").is_file()


@pytest.mark.parametrize("flushing_before", [False, True])
def test_the_training_loop_flushes_denormals_and_restores_the_callers_setting(flushing_before: bool) -> None:
    """Adam's state decays into denormal floats, which some CPUs handle several times slower: the training loop
    computes with them flushed to zero, and leaves the process as it found it."""
    from dqnkit.train.processes import denormals_flushed

    def underflow() -> float:
        return (torch.full((1,), 1e-38) * 0.01).item()  # 1e-40: a float32 denormal

    torch.set_flush_denormal(flushing_before)
    try:
        with denormals_flushed():
            assert underflow() == 0.0
        assert (underflow() == 0.0) == flushing_before
    finally:
        torch.set_flush_denormal(False)


def test_training_gives_back_the_signal_handlers_and_torch_threads_it_found(tmp_path: Path) -> None:
    """A notebook or script that calls train() keeps its own Ctrl-C handling and thread count afterwards."""
    code = (
        "import signal, torch\n"
        "from dqnkit.train.pipeline import train\n"
        "from dqnkit.train.plan import TrainOptions\n"
        "def mine(*_): pass\n"
        "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1): signal.signal(s, mine)\n"
        "torch.set_num_threads(2)\n"
        f"options = TrainOptions(config={str(CONFIGS / 'cartpole.py')!r}, runs_dir={str(tmp_path)!r},\n"
        "                       exp_name='a', max_env_steps=600, quiet=True)\n"
        "assert train(options) == 0\n"
        "print(all(signal.getsignal(s) is mine for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)))\n"
        "print(torch.get_num_threads())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "2"]


def test_seeds_train_sibling_run_folders_and_end_with_a_table(tmp_path: Path) -> None:
    args = ["--config", str(CONFIGS / "cartpole.py"), "--seeds", "0-2", "--parallel", "2", "--max-env-steps", "300"]
    result = cli("dqn-train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for seed in range(3):
        summary = json.loads((tmp_path / "runs" / f"cartpole_dqn_seed{seed}" / "summary.json").read_text())
        assert summary["seed"] == seed and summary["stop_reason"] == "max_env_steps"
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows[2:]] == ["0", "1", "2", "median", "IQM"]
    assert (tmp_path / "runs" / "cartpole_dqn.seeds.md").read_text().strip() == result.stdout.strip()
    assert result.stderr.count("max_env_steps after") == 3  # one line per seed as it ends
    runs = [str(p) for p in sorted((tmp_path / "runs").glob("cartpole_dqn_seed*"))]
    plotted = cli("dqn-plot", *runs, "--aggregate", "--out", str(tmp_path / "seeds.png"))
    assert plotted.returncode == 0, plotted.stderr
    assert "| cartpole_dqn | 3 |" in plotted.stdout
    assert (tmp_path / "seeds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.contract
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--seeds", "3-1"], "expected seeds like 0-7 or 0,3,5"),
        (["--seeds", "0-2", "--seed", "1"], "leave out --seed"),
        (["--parallel", "2"], "give --seeds too"),
        (["--seeds", "0-1", "--runs-dir", "a_file"], "--runs-dir a_file is not writable: a_file is a file"),
        (["--seeds", "0-1", "--runs-dir", "a_file/runs"], "--runs-dir a_file/runs is not writable: a_file is a file"),
        (["--seeds", "0-1", "--exp-name", "a/b"], "--exp-name 'a/b' must be a plain folder name"),
        (["--seeds", "0-1", "--set", "policy.nstepp=3"], "did you mean policy.nstep?"),
    ],
)
def test_seeds_options_refused(tmp_path: Path, args: list[str], fragment: str) -> None:
    (tmp_path / "a_file").write_text("")
    result = cli("dqn-train", "--config", str(CONFIGS / "cartpole.py"), *args, cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not list(tmp_path.glob("**/*_seed*")), "a seed started"
