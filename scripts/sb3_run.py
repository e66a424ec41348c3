"""One Stable-Baselines3 DQN run with RL Zoo's tuned hyperparameters, judged by dqnkit's stop rule; bench_train.py
runs it with the Python of a virtual environment of its own (stable-baselines3, rl_zoo3, gymnasium[box2d]), so this
file imports neither dqnkit nor DI-engine.

The hyperparameters are read from the installed rl_zoo3 (hyperparams/dqn.yml), not copied, and the run lasts RL
Zoo's n_timesteps unless --max-env-steps is smaller (its exploration schedule is a fraction of them). Every
--eval-every env steps, --eval-episodes fresh greedy episodes (new seeds every time, as dqnkit's evaluator) decide
the stop: mean >= --stop-value and none below --stop-min-return. Writes OUT/metrics.csv, OUT/summary.json and the
model at the stop (or the end), evaluated on --final-episodes episodes with seeds --final-seed + i like dqn-eval.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import rl_zoo3
import torch
import yaml
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

FRESH_SEED_BASE = 10_000_000  # evaluation episodes never reuse a training env's seed


def zoo_hyperparameters(env_id: str) -> dict[str, Any]:
    path = Path(rl_zoo3.__file__).parent / "hyperparams" / "dqn.yml"
    params = dict(yaml.safe_load(path.read_text())[env_id])
    if "policy_kwargs" in params:  # RL Zoo writes it as Python source ("dict(net_arch=[256, 256])") and evals it
        params["policy_kwargs"] = eval(params["policy_kwargs"], {"dict": dict})
    return params


def play(model: DQN, env_id: str, seeds: list[int]) -> list[float]:
    env = gym.make(env_id)
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


class StopRule(BaseCallback):
    """dqnkit's stop rule, evaluated in the training loop (SB3 has no evaluator beside training)."""

    def __init__(self, args: argparse.Namespace, started: float) -> None:
        super().__init__()
        self.args, self.started, self.next_eval, self.evaluations = args, started, 0, 0
        self.stopped = False
        self.rows: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        if self.num_timesteps < self.next_eval:
            return True
        self.next_eval += self.args.eval_every
        first = FRESH_SEED_BASE + self.evaluations * self.args.eval_episodes
        returns = play(self.model, self.args.env_id, list(range(first, first + self.args.eval_episodes)))
        self.evaluations += 1
        self.rows.append(
            {
                "env_step": self.num_timesteps,
                "wall_seconds": time.monotonic() - self.started,
                "eval_mean": float(np.mean(returns)),
                "eval_min": float(np.min(returns)),
                "eval_max": float(np.max(returns)),
            }
        )
        self.stopped = self.rows[-1]["eval_mean"] >= self.args.stop_value and min(returns) >= self.args.stop_min_return
        return not self.stopped


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env-id", default="LunarLander-v3")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--max-env-steps", type=int)
    p.add_argument("--eval-every", type=int, default=4000)
    p.add_argument("--eval-episodes", type=int, default=16)
    p.add_argument("--stop-value", type=float, default=220.0)
    p.add_argument("--stop-min-return", type=float, default=100.0)
    p.add_argument("--final-episodes", type=int, default=100)
    p.add_argument("--final-seed", type=int, default=1000)
    p.add_argument("--success-threshold", type=float, default=200.0)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    params = zoo_hyperparameters(args.env_id)
    budget = int(params.pop("n_timesteps"))
    if args.max_env_steps is not None:
        budget = min(budget, args.max_env_steps)
    policy = params.pop("policy")
    env = make_vec_env(args.env_id, n_envs=int(params.pop("n_envs", 1)), seed=args.seed)
    model = DQN(policy, env, seed=args.seed, verbose=0, **params)
    started = time.monotonic()
    rule = StopRule(args, started)
    model.learn(total_timesteps=budget, callback=rule)
    wall = rule.rows[-1]["wall_seconds"] if rule.stopped else time.monotonic() - started
    model.save(args.out / "model.zip")
    returns = play(model, args.env_id, [args.final_seed + i for i in range(args.final_episodes)])
    with open(args.out / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["env_step", "wall_seconds", "eval_mean", "eval_min", "eval_max"])
        writer.writeheader()
        writer.writerows(rule.rows)
    summary = {
        "stop_reason": "stop_value" if rule.stopped else "max_env_steps",
        "env_steps": int(model.num_timesteps),
        "wall_seconds": round(wall, 3),
        "torch_threads": torch.get_num_threads(),
        "hyperparameters": {k: repr(v) for k, v in zoo_hyperparameters(args.env_id).items()},
        "eval": {
            "mean": float(np.mean(returns)),
            "std": float(np.std(returns)),
            "min": float(np.min(returns)),
            "success_rate": float(np.mean([r >= args.success_threshold for r in returns])),
        },
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
