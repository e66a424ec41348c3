"""Benchmark: dqnkit on Pong against DI-engine's stock Pong DQN, on this machine: training throughput and replay
memory.

DI-engine's side is its own: the settings of dizoo/atari/config/serial/pong/pong_dqn_config.py (CUDA off), its
`wrap_deepmind` wrappers (float32 frames), DequeBuffer and the middleware pipeline of ding/example/dqn.py, over
ale-py 0.12's PongNoFrameskip-v4 (ale-py registers its games with Gymnasium only; the glue is a gym 0.25 env that
forwards to it). DI-engine's WarpFrame needs OpenCV: `pip install opencv-python-headless==4.10.0.84` first.

    python scripts/bench_atari.py throughput   # env steps/s at DI-engine's 10 updates per 96 env steps
    python scripts/bench_atari.py memory       # RSS as 20k transitions fill each buffer (collection only)
    python scripts/bench_atari.py envs         # agent steps/s of 8 preprocessed Pong games, random actions
    python scripts/bench_atari.py fill --steps 100000   # a real dqn-train's RSS as its buffer of that size fills

Each measurement runs in a fresh process; systems alternate; medians over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from results_io import RESULTS, command_line, machine, save_results

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STOCK_RATIO = ["--set", "policy.collect.n_sample=96", "--set", "policy.learn.update_per_collect=10"]
DING_NETWORK = ["--set", "policy.model.encoder_hidden_size_list=[128, 128, 512]"]
VARIANTS = {  # dqnkit's systems: configs/pong.py with these settings
    "dqnkit": [],
    "dqnkit-ding-net": DING_NETWORK,
    "dqnkit-raw-frames": ["--set", "dqnkit.compress_frames=false"],
}


def rss_mb() -> float:
    status = Path(f"/proc/{os.getpid()}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


# --- DI-engine's stock pipeline --------------------------------------------------------------------------------


def _register_old_api_pong() -> None:
    """PongNoFrameskip-v4 for gym 0.25's gym.make (which wrap_deepmind calls), forwarding to ale-py's Gymnasium env."""
    import gym
    import gymnasium
    import numpy as np

    from dqnkit.atari import register_games

    register_games()

    class OldApiAtari(gym.Env):
        def __init__(self) -> None:
            self.game = gymnasium.make("PongNoFrameskip-v4").unwrapped
            self.ale = self.game.ale
            self.np_random = np.random.RandomState(0)
            self.observation_space = gym.spaces.Box(0, 255, (210, 160, 3), np.uint8)
            self.action_space = gym.spaces.Discrete(int(self.game.action_space.n))

        def get_action_meanings(self) -> list[str]:
            return list(self.game.get_action_meanings())

        def seed(self, seed: int | None = None) -> list[int | None]:
            self._seed = seed
            return [seed]

        def reset(self, **kwargs: Any) -> Any:
            return self.game.reset(seed=getattr(self, "_seed", None))[0]

        def step(self, action: int) -> Any:
            obs, reward, terminated, truncated, info = self.game.step(int(action))
            return obs, reward, terminated or truncated, info

    gym.envs.registration.registry.pop("PongNoFrameskip-v4", None)
    gym.register(id="PongNoFrameskip-v4", entry_point=OldApiAtari)


def _stock_env() -> Any:
    from ding.envs import DingEnvWrapper
    from dizoo.atari.envs.atari_wrappers import wrap_deepmind
    from easydict import EasyDict

    _register_old_api_pong()
    return DingEnvWrapper(wrap_deepmind("PongNoFrameskip-v4"), cfg=EasyDict({"env_id": "PongNoFrameskip-v4"}))


def _stock_config() -> Any:
    from ding.config import compile_config
    from ding.envs import SubprocessEnvManagerV2
    from ding.policy import DQNPolicy
    from dizoo.atari.config.serial.pong.pong_dqn_config import create_config, main_config

    main_config.policy.cuda = False
    main_config.exp_name = tempfile.mkdtemp(prefix="ding-pong-")
    return compile_config(
        main_config,
        create_cfg=create_config,
        policy=DQNPolicy,
        env=None,
        auto=True,
        env_manager=SubprocessEnvManagerV2,
        save_cfg=False,
    )


def run_stock(max_env_steps: int, learn: bool, report: dict[str, Any]) -> None:
    """ding/example/dqn.py's pipeline on the stock config (evaluation left out: steps/s of training)."""
    from ding.data import DequeBuffer
    from ding.envs import SubprocessEnvManagerV2
    from ding.framework import task
    from ding.framework.context import OnlineRLContext
    from ding.framework.middleware import (
        OffPolicyLearner,
        StepCollector,
        data_pusher,
        eps_greedy_handler,
        nstep_reward_enhancer,
    )
    from ding.model import DQN
    from ding.policy import DQNPolicy
    from ding.utils import set_pkg_seed

    cfg = _stock_config()
    with task.start(async_mode=False, ctx=OnlineRLContext()):
        envs = SubprocessEnvManagerV2(env_fn=[_stock_env] * cfg.env.collector_env_num, cfg=cfg.env.manager)
        set_pkg_seed(0, use_cuda=False)
        buffer = DequeBuffer(size=cfg.policy.other.replay_buffer.replay_buffer_size)
        policy = DQNPolicy(cfg.policy, model=DQN(**cfg.policy.model))
        task.use(eps_greedy_handler(cfg))
        task.use(StepCollector(cfg, policy.collect_mode, envs))
        task.use(nstep_reward_enhancer(cfg))
        task.use(data_pusher(cfg, buffer))
        if learn:
            task.use(OffPolicyLearner(cfg, policy.learn_mode, buffer))
        task.use(_meter(max_env_steps, buffer, report))
        task.run()
        envs.close()


def _meter(max_env_steps: int, buffer: Any, report: dict[str, Any]) -> Any:
    started = time.perf_counter()
    points: list[dict[str, float]] = report.setdefault("rss", [])
    next_point = 0

    def meter(ctx: Any) -> None:
        nonlocal next_point
        if buffer.count() >= next_point:
            points.append({"transitions": buffer.count(), "rss_mb": rss_mb()})
            next_point += 2000
        if ctx.env_step >= max_env_steps:
            report.update(env_steps=int(ctx.env_step), seconds=time.perf_counter() - started, train_iter=ctx.train_iter)
            if hasattr(buffer, "held_frame_bytes"):  # the frame buffer's own bytes: frames, each slot's frame numbers
                report["buffer_bytes_per_transition"] = buffer.held_frame_bytes() / buffer.count() + sum(
                    v[0].numel() * v.element_size() for v in buffer.fields.values()
                )
            from ding.framework import task

            task.finish = True

    return meter


# --- dqnkit ------------------------------------------------------------------------------------------------------


def run_dqnkit_collection(max_env_steps: int, report: dict[str, Any], packed: bool) -> None:
    """dqnkit's collector (its env manager, n-step enhancer and frame buffer, compressed with `packed`) without
    learning."""
    from ding.framework import task
    from ding.framework.context import OnlineRLContext
    from ding.framework.middleware import StepCollector, data_pusher, eps_greedy_handler

    from dqnkit.config import compile_dqn_config, load_config_file
    from dqnkit.dingext.family import ALGORITHMS
    from dqnkit.dingext.frames import FrameReplayBuffer, PackedFrameReplayBuffer
    from dqnkit.dingext.nstep import nstep_reward_enhancer
    from dqnkit.train.pipeline import env_manager
    from dqnkit.train.plan import fill_env_facts

    main, create = load_config_file(REPO / "configs" / "pong.py")
    fill_env_facts(main, [])
    cfg = compile_dqn_config(main, create, seed=0)
    with task.start(async_mode=False, ctx=OnlineRLContext()):
        envs = env_manager(cfg, cfg.env.collector_env_num)
        envs.seed(0)
        envs.launch()
        _, policy = ALGORITHMS["dqn"].build(cfg.policy)
        size = int(cfg.policy.other.replay_buffer.replay_buffer_size)
        buffer = PackedFrameReplayBuffer(size) if packed else FrameReplayBuffer(size)
        task.use(eps_greedy_handler(cfg))
        task.use(StepCollector(cfg, policy.collect_mode, envs))
        task.use(nstep_reward_enhancer(cfg))
        task.use(data_pusher(cfg, buffer))
        task.use(_meter(max_env_steps, buffer, report))
        task.run()
        envs.close()


def run_dqnkit_training(max_env_steps: int, extra: list[str], report: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as runs:
        args = ["--config", str(REPO / "configs" / "pong.py"), "--runs-dir", runs, "--exp-name", "b", "--quiet"]
        never = ["--set", "policy.eval.evaluator.eval_freq=1000000"]  # one evaluation, at the start, in the child
        subprocess.run(
            [str(BIN / "dqn-train"), *args, "--max-env-steps", str(max_env_steps), *never, *extra], check=True
        )
        summary = json.loads((Path(runs) / "b" / "summary.json").read_text())
    report.update(env_steps=summary["env_steps"], seconds=summary["wall_seconds"], train_iter=summary["train_iters"])


def run_dqnkit_fill(max_env_steps: int, extra: list[str], report: dict[str, Any]) -> None:
    """A whole `dqn-train` process on Pong whose buffer (as large as the run) fills completely: its RSS sampled
    every second. One update per 64 env steps, so that the fill takes minutes, not hours."""
    fill = [
        *("--set", f"policy.other.replay_buffer.replay_buffer_size={max_env_steps}"),
        *("--set", "policy.learn.update_per_collect=1", "--set", "dqnkit.save_replay=false"),
        *("--set", "policy.eval.evaluator.eval_freq=1000000000"),
    ]
    points: list[dict[str, float]] = report.setdefault("rss", [])
    with tempfile.TemporaryDirectory() as runs:
        args = ["--config", str(REPO / "configs" / "pong.py"), "--runs-dir", runs, "--exp-name", "b", "--quiet"]
        command = [str(BIN / "dqn-train"), *args, "--max-env-steps", str(max_env_steps), *fill, *extra]
        started = time.perf_counter()
        with subprocess.Popen(command) as process:
            status = Path(f"/proc/{process.pid}/status")
            while process.poll() is None:
                try:
                    text = status.read_text()
                except OSError:
                    break
                mb = [int(text.split(f"{key}:")[1].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")]
                points.append({"seconds": time.perf_counter() - started, "rss_mb": mb[0], "hwm_mb": mb[1]})
                time.sleep(1.0)
        if process.returncode != 0:
            raise SystemExit(f"dqn-train exited with {process.returncode}")
        summary = json.loads((Path(runs) / "b" / "summary.json").read_text())
    report.update(env_steps=summary["env_steps"], seconds=summary["wall_seconds"], train_iter=summary["train_iters"])
    report["peak_rss_mb"] = max(p["hwm_mb"] for p in points)


# --- env runners -------------------------------------------------------------------------------------------------


def _gymnasium_wrapped_pong() -> Any:
    """Gymnasium's AtariPreprocessing + FrameStackObservation (OpenCV inside) in DingEnvWrapper."""
    import gymnasium
    from ding.envs import DingEnvWrapper
    from easydict import EasyDict

    from dqnkit.atari import register_games

    register_games()
    env = gymnasium.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.0)
    env = gymnasium.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, terminal_on_life_loss=True)
    env = gymnasium.wrappers.FrameStackObservation(env, 4)
    return DingEnvWrapper(env, cfg=EasyDict({"env_id": "ALE/Pong-v5"}))


def run_envs(runner: str, steps: int, report: dict[str, Any]) -> None:
    """Agent steps per second of 8 Pong games with random actions."""
    import numpy as np
    from ding.envs import BaseEnvManagerV2, SubprocessEnvManagerV2
    from easydict import EasyDict

    from dqnkit.atari import AtariSettings, vector_games
    from dqnkit.envs import EnvRef, make_ding_env

    rng = np.random.default_rng(0)
    if runner.startswith("vector"):
        games = vector_games("pong", AtariSettings(), 8, training=True)
        games.reset(seed=0)
        started = time.perf_counter()
        for _ in range(steps // 8):
            games.step(rng.integers(6, size=8))
        report.update(seconds=time.perf_counter() - started, env_steps=steps // 8 * 8)
        games.close()
        return
    make = _gymnasium_wrapped_pong if runner.endswith("gymnasium") else partial(make_ding_env, EnvRef("ALE/Pong-v5"))
    manager_type = SubprocessEnvManagerV2 if runner.startswith("subprocess") else BaseEnvManagerV2
    manager = manager_type(env_fn=[make] * 8, cfg=EasyDict(manager_type.default_config()))
    manager.seed(0)
    manager.launch()
    done = 0
    started = time.perf_counter()
    while done < steps:
        ready = manager.ready_obs_id  # BaseEnvManagerV2 steps every env, with a list of actions
        manager.step([np.array([rng.integers(6)]) for _ in ready])
        done += len(ready)
    report.update(seconds=time.perf_counter() - started, env_steps=done)
    manager.close()


# --- driver ------------------------------------------------------------------------------------------------------


def child(system: str, mode: str, steps: int) -> dict[str, Any]:
    report: dict[str, Any] = {"system": system, "mode": mode}
    if mode == "envs":
        run_envs(system, steps, report)
    elif system == "ding" and mode == "memory":
        run_stock(steps, learn=False, report=report)
    elif system == "ding":
        run_stock(steps, learn=True, report=report)
    elif mode == "memory":
        run_dqnkit_collection(steps, report, packed=system == "dqnkit")
    elif mode == "fill":
        run_dqnkit_fill(steps, VARIANTS[system], report)
    else:
        run_dqnkit_training(steps, [*VARIANTS[system], *STOCK_RATIO], report)
    if "peak_rss_mb" not in report:
        report["peak_rss_mb"] = max((p["rss_mb"] for p in report.get("rss", [])), default=None)
    return report


def spawn(system: str, mode: str, steps: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", system, mode, str(steps)], check=True, capture_output=True, text=True
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{system:>16} {mode}: {json.dumps({k: v for k, v in report.items() if k != 'rss'})}", file=sys.stderr)
    return report


def bytes_per_transition(report: dict[str, Any]) -> float:
    """The slope of RSS over stored transitions, between the first and the last half of the fill."""
    points = [p for p in report["rss"] if p["transitions"] >= 2000]
    first, last = points[0], points[-1]
    return (last["rss_mb"] - first["rss_mb"]) * 2**20 / (last["transitions"] - first["transitions"])


def memory_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """RSS as the buffer filled, and the 100k and 1M estimates: the peak plus the bytes a further transition adds
    (the buffer's own count where it keeps one: the RSS slope of a frame ring moves in large steps)."""
    held = statistics.median(r["rss"][-1]["transitions"] for r in runs)
    exact = [r["buffer_bytes_per_transition"] for r in runs if "buffer_bytes_per_transition" in r]
    per_transition = statistics.median(exact) if exact else statistics.median(bytes_per_transition(r) for r in runs)
    peak = statistics.median(r["peak_rss_mb"] for r in runs)
    return {
        "rss_slope_bytes_per_transition": statistics.median(bytes_per_transition(r) for r in runs),
        "bytes_per_transition": per_transition,
        "base_rss_mb": statistics.median(r["rss"][0]["rss_mb"] for r in runs),
        "peak_rss_mb": peak,
        "transitions_at_peak": held,
        **{f"est_rss_gb_{n}": (peak + per_transition * (n - held) / 2**20) / 1024 for n in (100_000, 1_000_000)},
    }


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("throughput", "memory", "envs", "fill"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--systems", nargs="+", help="which of the mode's systems, in this order (default: all)")
    parser.add_argument("--steps", type=int, help="env steps per run (default 2,880 throughput, 20,000 memory)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    steps = args.steps or {"throughput": 2880, "memory": 20_000, "envs": 8000, "fill": 100_000}[args.mode]
    known = {
        "throughput": ("dqnkit", "ding", "dqnkit-ding-net", "dqnkit-raw-frames"),
        "memory": ("dqnkit", "ding", "dqnkit-raw-frames"),
        "envs": ("base-atarigame", "subprocess-atarigame", "base-gymnasium", "subprocess-gymnasium", "vector"),
        "fill": ("dqnkit", "dqnkit-raw-frames"),
    }[args.mode]
    unknown = sorted(set(args.systems or ()) - set(known))
    if unknown:
        parser.error(f"--systems: {', '.join(unknown)} not among {args.mode}'s: {', '.join(known)}")
    systems = tuple(args.systems or known)
    runs = [spawn(system, args.mode, steps) for _ in range(args.rounds) for system in systems]
    summary = {}
    for system in systems:
        mine = [r for r in runs if r["system"] == system]
        if args.mode == "memory":
            summary[system] = memory_summary(mine)
        elif args.mode == "fill":
            summary[system] = {"peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in mine)}
        else:
            summary[system] = {"env_steps_per_second": statistics.median(r["env_steps"] / r["seconds"] for r in mine)}
    data = {
        "machine": machine(),
        "command": command_line("bench_atari.py"),
        "steps": steps,
        "runs": runs,
        "summary": summary,
    }
    save_results(args.out, f"atari-{args.mode}", data, markdown(args.mode, data))


def markdown(mode: str, data: dict[str, Any]) -> str:
    title = {
        "envs": "Pong: what stepping 8 preprocessed games costs, by env runner",
        "throughput": "Pong: dqnkit's training throughput against DI-engine's stock Pong DQN",
        "memory": "Pong: replay memory, dqnkit against DI-engine's stock Pong DQN",
        "fill": "Pong: a whole dqn-train process's peak RSS with its replay buffer full",
    }[mode]
    lines = [
        f"# {title}",
        "",
        f"{data['machine']}; `{data['command']}`; {data['steps']:,} env steps a run, medians over rounds.",
        "",
    ]
    s = data["summary"]
    if mode == "envs":
        lines += ["| runner (8 Pong games, random actions) | agent steps/s | ms a step |", "|---|---|---|"]
        for system, row in s.items():
            rate = row["env_steps_per_second"]
            lines.append(f"| {system} | {rate:,.0f} | {1000 / rate:.2f} |")
    elif mode == "fill":
        lines += ["| system | transitions held | peak RSS |", "|---|---|---|"]
        for system, row in s.items():
            lines.append(f"| {system} | {data['steps']:,} | {row['peak_rss_mb'] / 1024:.2f} GB |")
    elif mode == "throughput":
        ding = s["ding"]["env_steps_per_second"]
        lines += ["| system | env steps/s | vs DI-engine |", "|---|---|---|"]
        for system, row in s.items():
            rate = row["env_steps_per_second"]
            lines.append(f"| {system} | {rate:.1f} | {rate / ding:.1f}x |")
    else:
        lines += [
            "| system | bytes a stored transition | RSS before the fill | peak RSS (transitions held) | "
            "100k transitions (est.) | 1M (est.) |",
            "|---|---|---|---|---|---|",
        ]
        for system, row in s.items():
            lines.append(
                f"| {system} | {row['bytes_per_transition']:,.0f} | {row['base_rss_mb']:,.0f} MB | "
                f"{row['peak_rss_mb']:,.0f} MB ({row['transitions_at_peak']:,.0f}) | "
                f"{row['est_rss_gb_100000']:,.2f} GB | {row['est_rss_gb_1000000']:,.1f} GB |"
            )
        lines += [
            "",
            "dqnkit's bytes a transition are the frame buffer's own count (frames held and each slot's fields); "
            "DI-engine's the RSS slope over the fill (its DequeBuffer keeps no count).",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
