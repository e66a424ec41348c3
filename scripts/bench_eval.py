"""Benchmark: wall time of an N-episode evaluation with dqn-eval on model.onnx (parallel envs, batched
onnxruntime inference) against a plain loop: one gym env at a time, `gym.make` defaults, the eager DI-engine
model. Both play the same seeds. Writes benchmarks/results/eval-<date>.{json,md}.

    python scripts/bench_eval.py --ckpt runs/lunarlander_dqn_seed0 --episodes 100
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from results_io import RESULTS, command_line, machine, save_results

BIN = Path(sys.executable).parent


def plain_loop(ckpt: str, episodes: int, seed: int) -> tuple[float, list[float]]:
    """What a user writes without dqnkit: load the DI-engine model, step one env, argmax per step."""
    import gym
    import torch

    from dqnkit.network import load_network

    net = load_network(ckpt)
    env = gym.make(net.env_id, new_step_api=True)
    returns = []
    started = time.perf_counter()
    for i in range(episodes):
        obs, done, total = env.reset(seed=seed + i), False, 0.0
        while not done:
            with torch.no_grad():
                action = int(net.model(torch.as_tensor(obs, dtype=torch.float32)[None])["logit"].argmax(-1))
            obs, reward, terminated, truncated, _ = env.step(action)
            total += reward
            done = terminated or truncated
        returns.append(total)
    return time.perf_counter() - started, returns


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="dqnkit checkpoint or run folder")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--envs", type=int, default=8, help="dqn-eval --envs")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()

    export_dir = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    subprocess.run(
        [str(BIN / "dqn-export"), "--ckpt", args.ckpt, "--format", "onnx", "--out", str(export_dir)],
        check=True,
        capture_output=True,
    )
    report = export_dir / "report.json"
    started = time.perf_counter()
    subprocess.run(
        [
            str(BIN / "dqn-eval"),
            str(export_dir / "model.onnx"),
            "--episodes",
            str(args.episodes),
            "--seed",
            str(args.seed),
            "--envs",
            str(args.envs),
            "--json",
            str(report),
            "--quiet",
        ],
        check=True,
        capture_output=True,
    )
    dqn_eval_seconds = time.perf_counter() - started  # the whole command, start-up included
    dqn_eval_returns = [e["episode_return"] for e in json.loads(report.read_text())["episodes"]]
    plain_seconds, plain_returns = plain_loop(args.ckpt, args.episodes, args.seed)

    stamp = date.today().isoformat()
    result = {
        "date": stamp,
        "machine": machine(),
        "command": command_line("bench_eval.py"),
        "episodes": args.episodes,
        "dqn_eval_onnx_seconds": dqn_eval_seconds,
        "plain_loop_seconds": plain_seconds,
        "ratio": dqn_eval_seconds / plain_seconds,
        "dqn_eval_mean_return": float(np.mean(dqn_eval_returns)),
        "plain_loop_mean_return": float(np.mean(plain_returns)),
    }
    text = (
        f"# Evaluation benchmark, {stamp}\n\n{args.episodes} episodes, seeds {args.seed}+; {result['machine']}.\n"
        f"Command: `{result['command']}`.\n\n"
        "| how | wall s | mean return |\n| --- | ---: | ---: |\n"
        f"| dqn-eval model.onnx --envs {args.envs} (whole command) | {dqn_eval_seconds:.1f} | "
        f"{result['dqn_eval_mean_return']:.1f} |\n"
        f"| plain loop, eager DI-engine model, one env | {plain_seconds:.1f} | "
        f"{result['plain_loop_mean_return']:.1f} |\n"
        f"\nRatio dqn-eval / plain loop: {result['ratio']:.2f}x\n"
    )
    save_results(args.out, "eval", result, text)


if __name__ == "__main__":
    main()
