"""Benchmark: DI-engine's stock DQN recipe against dqnkit's default config, alternately, on this machine.

For every seed it runs the stock recipe (DI-engine's dizoo config through the same middleware pipeline as
dizoo/box2d/lunarlander/entry/lunarlander_dqn_example.py, CUDA off) and then dqnkit's config, and records env steps
and wall seconds to the stop checkpoint, env steps/s, train iterations, and a greedy evaluation of the stop
checkpoint on fixed seeds (1000, 1001, ...). Writes benchmarks/results/train-<date>.{json,md,png}.

    python scripts/bench_train.py                       # LunarLander, seeds 0 1 2 (about 30 minutes on 2 cores)
    python scripts/bench_train.py --seeds 0 --config configs/cartpole.py \
        --stock-config dizoo/classic_control/cartpole/config/cartpole_dqn_config.py --max-env-steps 3000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from results_io import RESULTS, command_line, machine, plot_learning_curves, save_results

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STOCK_CONFIG = "dizoo/box2d/lunarlander/config/lunarlander_dqn_config.py"
EVAL_SEED = 1000


def run_stock(config_rel: str, seed: int, out_dir: Path, max_env_steps: int, env_id: str) -> None:
    """DI-engine's own example pipeline (subprocess env managers, CkptSaver, termination checker), CUDA off, with
    one passive middleware that logs each evaluation for the curves."""
    import csv
    import importlib.util

    import ding
    import gym
    from ding.config import compile_config
    from ding.data import DequeBuffer
    from ding.envs import BaseEnvManagerV2, DingEnvWrapper, SubprocessEnvManagerV2
    from ding.framework import ding_init, task
    from ding.framework.context import OnlineRLContext
    from ding.framework.middleware import (
        CkptSaver,
        OffPolicyLearner,
        StepCollector,
        data_pusher,
        eps_greedy_handler,
        interaction_evaluator,
        nstep_reward_enhancer,
        online_logger,
        termination_checker,
    )
    from ding.model import DQN
    from ding.policy import DQNPolicy
    from ding.utils import set_pkg_seed

    spec = importlib.util.spec_from_file_location("stock_cfg", Path(ding.__file__).parent.parent / config_rel)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    main_config, create_config = module.main_config, module.create_config
    main_config.policy.cuda = False
    main_config.exp_name = str(out_dir)
    cfg = compile_config(main_config, create_cfg=create_config, seed=seed, auto=True, save_cfg=False)
    ding_init(cfg)
    env_id = cfg.env.get("env_id") or env_id
    # The architecture and env id, for evaluating the plain DI-engine checkpoint afterwards.
    import yaml

    from dqnkit.config import to_plain

    plain = to_plain(main_config)
    plain.setdefault("env", {})["env_id"] = env_id
    (out_dir / "stock_config.yaml").write_text(
        yaml.safe_dump({"main_config": plain, "create_config": to_plain(create_config)})
    )
    started = time.monotonic()
    metrics = open(out_dir / "metrics.csv", "w", newline="")  # noqa: SIM115 (closed at the end)
    writer = csv.writer(metrics)
    writer.writerow(["env_step", "train_iter", "wall_seconds", "eval_mean", "eval_std", "eval_min", "eval_max"])

    def record(ctx: Any) -> None:
        if ctx.eval_value != float("-inf"):
            writer.writerow(
                [
                    ctx.env_step,
                    ctx.train_iter,
                    round(time.monotonic() - started, 3),
                    ctx.eval_value,
                    ctx.eval_value_std,
                    ctx.eval_value_min,
                    ctx.eval_value_max,
                ]
            )
            metrics.flush()

    # The LunarLander recipe asks for subprocess envs (as its example hard-codes); other recipes may say base.
    manager = SubprocessEnvManagerV2 if cfg.env.manager.type == "subprocess" else BaseEnvManagerV2
    with task.start(async_mode=False, ctx=OnlineRLContext()):
        collector_env = manager(
            env_fn=[lambda: DingEnvWrapper(gym.make(env_id)) for _ in range(cfg.env.collector_env_num)],
            cfg=cfg.env.manager,
        )
        evaluator_env = manager(
            env_fn=[lambda: DingEnvWrapper(gym.make(env_id)) for _ in range(cfg.env.evaluator_env_num)],
            cfg=cfg.env.manager,
        )
        set_pkg_seed(cfg.seed, use_cuda=False)
        model = DQN(**cfg.policy.model)
        buffer_ = DequeBuffer(size=cfg.policy.other.replay_buffer.replay_buffer_size)
        policy = DQNPolicy(cfg.policy, model=model)
        task.use(interaction_evaluator(cfg, policy.eval_mode, evaluator_env))
        task.use(eps_greedy_handler(cfg))
        task.use(StepCollector(cfg, policy.collect_mode, collector_env))
        task.use(nstep_reward_enhancer(cfg))
        task.use(data_pusher(cfg, buffer_))
        task.use(OffPolicyLearner(cfg, policy.learn_mode, buffer_))
        task.use(online_logger(train_show_freq=50))
        task.use(record)
        task.use(CkptSaver(policy, cfg.exp_name, train_freq=1000))
        task.use(termination_checker(max_env_step=max_env_steps))
        task.run()
        collector_env.close()
        evaluator_env.close()
    metrics.close()


def read_curve(metrics: Path) -> list[dict[str, float]]:
    import csv

    with open(metrics, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def greedy_eval(checkpoint: Path, episodes: int, config: str | None) -> dict[str, Any]:
    from dqnkit.evaluate import evaluate

    report = evaluate(checkpoint, episodes=episodes, seed=EVAL_SEED, n_envs=8, log=lambda _: None, config_path=config)
    s = report.stats
    return {"mean": s["mean"], "std": s["std"], "min": s["min"], "success_rate": s["success_rate"]}


def one_run(system: str, seed: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out = work / f"{system}_seed{seed}"
    finished_marker = out / "ckpt" / "final.pth.tar" if system == "stock" else out / "summary.json"
    started = time.monotonic()
    if system == "stock":
        cmd = [sys.executable, __file__, "--run-stock", str(out), "--stock-config", args.stock_config]
        cmd += ["--seed-one", str(seed), "--max-env-steps", str(args.max_env_steps)]
        cmd += ["--stock-env-id", args.stock_env_id]
    else:
        cmd = [str(BIN / "dqn-train"), "--config", args.config, "--seed", str(seed), "--runs-dir", str(work)]
        cmd += ["--exp-name", out.name, "--max-env-steps", str(args.max_env_steps), "--quiet"]
    if finished_marker.is_file():  # finished earlier in this --work folder: measure it, don't train again
        print(f"  reusing the finished run in {out}", file=sys.stderr)
    else:
        out.mkdir(parents=True, exist_ok=True)
        quiet_env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=quiet_env)
    process_seconds = time.monotonic() - started
    curve = read_curve(out / "metrics.csv")
    if system == "stock":  # DI-engine's rule: the first evaluation whose mean reaches the stop value
        stop_value = _stop_value(args)
        solved_rows = [r for r in curve if r["eval_mean"] >= stop_value and r["train_iter"] > 0]
    else:  # dqnkit's own rule (it may also require a minimum episode return): its summary says
        stopped = json.loads((out / "summary.json").read_text())["stop_reason"] == "stop_value"
        solved_rows = curve[-1:] if stopped else []
    stop_row = solved_rows[0] if solved_rows else curve[-1]
    if system == "stock":
        checkpoint = out / "ckpt" / ("final.pth.tar" if solved_rows else "eval.pth.tar")
        config = str(out / "stock_config.yaml")
    else:
        checkpoint = out / ("best.pth.tar" if solved_rows else "final.pth.tar")
        config = None
    evaluation = greedy_eval(checkpoint, args.eval_episodes, config)
    threshold = args.solved_threshold
    env_steps = int(stop_row["env_step"])
    if system == "dqnkit" and solved_rows:
        # Its evaluations run beside training and are acted on dqnkit.eval_lag train iterations later: count the env
        # steps the run took until it stopped, not those of the evaluated weights (its metrics row's wall_seconds is
        # already the moment it acted on the evaluation).
        env_steps = int(json.loads((out / "summary.json").read_text())["env_steps"])
    return {
        "system": system,
        "seed": seed,
        "stopped_by_stop_value": bool(solved_rows),
        "env_steps": env_steps,
        "wall_seconds": stop_row["wall_seconds"],
        "train_iters": int(stop_row["train_iter"]),
        "env_steps_per_second": env_steps / stop_row["wall_seconds"] if stop_row["wall_seconds"] else None,
        "process_seconds": round(process_seconds, 1),
        "eval": evaluation,
        "solved": bool(solved_rows) and evaluation["mean"] >= threshold,
        "curve": curve,
    }


def _stock_config_path(rel: str) -> Path:
    import ding

    return Path(ding.__file__).parent.parent / rel


def _stop_value(args: argparse.Namespace) -> float:
    """The stock recipe's env.stop_value."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("stock_cfg", _stock_config_path(args.stock_config))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return float(module.main_config.env.stop_value)


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for system in ("stock", "dqnkit"):
        rows = [r for r in runs if r["system"] == system]
        out[system] = {
            "env_steps": median([r["env_steps"] for r in rows]),
            "wall_seconds": median([r["wall_seconds"] for r in rows]),
            "eval_mean": median([r["eval"]["mean"] for r in rows]),
            "success_rate": median([r["eval"]["success_rate"] for r in rows]),
            "solved": sum(r["solved"] for r in rows),
            "runs": len(rows),
        }
    stock, ours = out["stock"], out["dqnkit"]
    out["ratio_env_steps"] = ours["env_steps"] / stock["env_steps"] if stock["env_steps"] else None
    out["ratio_wall_seconds"] = ours["wall_seconds"] / stock["wall_seconds"] if stock["wall_seconds"] else None
    return out


def markdown_report(runs: list[dict[str, Any]], summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        f"# Training benchmark, {meta['date']}",
        "",
        f"Machine: {meta['machine']}. Command: `{meta['command']}`.",
        f"Stop checkpoint evaluated greedily on {meta['eval_episodes']} episodes (seeds {EVAL_SEED}+); "
        f"solved = stopped by the stop value and 100-episode mean >= {meta['solved_threshold']}.",
        "",
        "| system | seed | env steps | wall s | steps/s | train iters | eval mean | std | min | success | solved |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in runs:
        e = r["eval"]
        lines.append(
            f"| {r['system']} | {r['seed']} | {r['env_steps']:,} | {r['wall_seconds']:.0f} | "
            f"{r['env_steps_per_second']:.0f} | {r['train_iters']:,} | {e['mean']:.1f} | {e['std']:.1f} | "
            f"{e['min']:.1f} | {e['success_rate']:.0%} | {'yes' if r['solved'] else 'no'} |"
        )
    lines += [
        "",
        "| median | env steps | wall s | eval mean | success | solved runs |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for system in ("stock", "dqnkit"):
        s = summary[system]
        lines.append(
            f"| {system} | {s['env_steps']:,.0f} | {s['wall_seconds']:.0f} | {s['eval_mean']:.1f} | "
            f"{s['success_rate']:.0%} | {s['solved']}/{s['runs']} |"
        )
    lines += [
        "",
        f"Ratios dqnkit / stock (medians): env steps {summary['ratio_env_steps']:.2f}x, "
        f"wall seconds {summary['ratio_wall_seconds']:.2f}x.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--config", default=str(REPO / "configs" / "lunarlander.py"), help="dqnkit config")
    p.add_argument("--stock-config", default=STOCK_CONFIG, help="DI-engine config, relative to site-packages")
    p.add_argument("--stock-env-id", default="LunarLander-v2", help="env id when the stock config names none")
    p.add_argument("--max-env-steps", type=int, default=400_000, help="cap per run")
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--solved-threshold", type=float, default=200.0)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--work", type=Path, help="where runs go (default: a folder under --out/bench-runs)")
    p.add_argument("--run-stock", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--seed-one", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.run_stock is not None:
        run_stock(args.stock_config, args.seed_one, args.run_stock, args.max_env_steps, args.stock_env_id)
        return

    stamp = date.today().isoformat()
    work = args.work or args.out / "bench-runs" / f"train-{stamp}-{int(time.time())}"
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in args.seeds:
        for system in ("stock", "dqnkit"):
            print(f"bench_train: {system} seed {seed} ...", file=sys.stderr, flush=True)
            runs.append(one_run(system, seed, args, work))
            r = runs[-1]
            print(
                f"  {r['env_steps']:,} env steps, {r['wall_seconds']:.0f} s, eval {r['eval']['mean']:.1f}",
                file=sys.stderr,
                flush=True,
            )
    summary = summarize(runs)
    meta = {
        "date": stamp,
        "machine": machine(),
        "command": command_line("bench_train.py"),
        "eval_episodes": args.eval_episodes,
        "solved_threshold": args.solved_threshold,
    }
    data = {"meta": meta, "summary": summary, "runs": runs}
    base = save_results(args.out, "train", data, markdown_report(runs, summary, meta))
    plot_learning_curves(base.with_suffix(".png"), runs, "system", "DI-engine stock recipe vs dqnkit: eval return")


if __name__ == "__main__":
    main()
