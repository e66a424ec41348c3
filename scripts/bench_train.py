"""Benchmark: DI-engine's stock DQN recipe, dqnkit's configs and Stable-Baselines3 with RL Zoo's tuned DQN,
alternately, seed by seed, on this machine.

- stock: DI-engine's dizoo config through the same middleware pipeline as
  dizoo/box2d/lunarlander/entry/lunarlander_dqn_example.py, CUDA off (LunarLander-v2, gym 0.25).
- dqnkit systems (--dqnkit NAME=CONFIG): dqn-train with that config (default: configs/lunarlander.py on v2 and
  configs/lunarlander_v3.py on Gymnasium's v3).
- sb3: scripts/sb3_run.py in a virtual environment of its own (benchmarks/.sb3-venv, installed on first use),
  RL Zoo's hyperparameters for --sb3-env-id read from the installed rl_zoo3, judged by the first dqnkit config's
  stop rule (the same evaluations, as many env steps apart).

Each run records env steps and wall seconds to its stop (or the end of its budget), env steps/s, and a
greedy evaluation of the stop checkpoint on fixed seeds (1000, 1001, ...). Writes
benchmarks/results/train-<date>.{json,md,png}.

    python scripts/bench_train.py                       # LunarLander, seeds 0 1 2 (about an hour on 2 cores)
    python scripts/bench_train.py --seeds 100 101 --systems dqnkit-v3 tuned sb3 \
        --dqnkit dqnkit-v3=configs/lunarlander_v3.py --dqnkit tuned=studies/ll/best_config.py
    python scripts/bench_train.py --seeds 0 --dqnkit dqnkit=configs/cartpole.py --systems stock dqnkit \
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
DEFAULT_DQNKIT = [
    ("dqnkit", str(REPO / "configs" / "lunarlander.py")),
    ("dqnkit-v3", str(REPO / "configs" / "lunarlander_v3.py")),
]
SB3_PACKAGES = ["torch==2.13.0", "stable-baselines3==2.9.2", "rl_zoo3==2.9.2", "gymnasium[box2d]==1.4.0"]
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
    started = time.monotonic()
    if system == "stock":
        finished_marker = out / "ckpt" / "final.pth.tar"
        cmd = [sys.executable, __file__, "--run-stock", str(out), "--stock-config", args.stock_config]
        cmd += ["--seed-one", str(seed), "--max-env-steps", str(args.max_env_steps)]
        cmd += ["--stock-env-id", args.stock_env_id]
    elif system == "sb3":
        finished_marker = out / "summary.json"
        cmd = [str(sb3_python(args.sb3_venv)), str(REPO / "scripts" / "sb3_run.py"), "--out", str(out)]
        cmd += ["--env-id", args.sb3_env_id, "--seed", str(seed), "--max-env-steps", str(args.max_env_steps)]
        cmd += [*stop_rule_args(args.dqnkit[next(iter(args.dqnkit))]), "--final-episodes", str(args.eval_episodes)]
        cmd += ["--final-seed", str(EVAL_SEED), "--success-threshold", str(args.solved_threshold)]
    else:
        finished_marker = out / "summary.json"
        cmd = [str(BIN / "dqn-train"), "--config", args.dqnkit[system], "--seed", str(seed), "--runs-dir", str(work)]
        cmd += ["--exp-name", out.name, "--max-env-steps", str(args.max_env_steps), "--quiet"]
    if finished_marker.is_file():  # finished earlier in this --work folder: measure it, don't train again
        print(f"  reusing the finished run in {out}", file=sys.stderr)
    else:
        out.mkdir(parents=True, exist_ok=True)
        quiet_env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=quiet_env)
    process_seconds = time.monotonic() - started
    row = sb3_outcome(out, args.solved_threshold) if system == "sb3" else ding_outcome(system, out, args)
    return {"system": system, "seed": seed, **row, "process_seconds": round(process_seconds, 1)}


def sb3_outcome(out: Path, solved_threshold: float) -> dict[str, Any]:
    """sb3_run.py judged itself by the stop rule and evaluated its model; its summary says how it went."""
    summary = json.loads((out / "summary.json").read_text())
    stopped = summary["stop_reason"] == "stop_value"
    return {
        "stopped_by_stop_value": stopped,
        "env_steps": summary["env_steps"],
        "wall_seconds": summary["wall_seconds"],
        "train_iters": None,
        "env_steps_per_second": summary["env_steps"] / summary["wall_seconds"],
        "torch_threads": summary["torch_threads"],
        "eval": summary["eval"],
        "solved": stopped and summary["eval"]["mean"] >= solved_threshold,
        "curve": read_curve(out / "metrics.csv"),
    }


def ding_outcome(system: str, out: Path, args: argparse.Namespace) -> dict[str, Any]:
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
    env_steps, train_iters = int(stop_row["env_step"]), int(stop_row["train_iter"])
    wall = float(stop_row["wall_seconds"])
    if system != "stock":
        # Its evaluations run beside training and are acted on dqnkit.eval_lag train iterations later: count the env
        # steps the run took until it stopped, not those of the evaluated weights (its metrics row's wall_seconds is
        # already the moment it acted on the evaluation); a run that did not stop counts its whole budget, as SB3's.
        summary = json.loads((out / "summary.json").read_text())
        env_steps = int(summary["env_steps"])
        wall = wall if solved_rows else float(summary["wall_seconds"])
        train_iters = int(summary["train_iters"])
    return {
        "stopped_by_stop_value": bool(solved_rows),
        "env_steps": env_steps,
        "wall_seconds": wall,
        "train_iters": train_iters,
        "env_steps_per_second": env_steps / wall if wall else None,
        "torch_threads": 1,
        "eval": evaluation,
        "solved": bool(solved_rows) and evaluation["mean"] >= args.solved_threshold,
        "curve": curve,
    }


def stop_rule_args(config: str) -> list[str]:
    """dqnkit's stop rule as the config sets it, for sb3_run.py: the same evaluations, as many env steps apart."""
    from dqnkit.train.plan import TrainOptions, plan_run

    cfg = plan_run(TrainOptions(config=config), writes_run_folder=False).cfg
    every = cfg.policy.eval.evaluator.eval_freq * cfg.policy.collect.n_sample / cfg.policy.learn.update_per_collect
    minimum = cfg.dqnkit.stop_min_return
    return [
        *("--eval-every", str(round(every)), "--eval-episodes", str(cfg.env.n_evaluator_episode)),
        *("--stop-value", str(cfg.env.stop_value), "--stop-min-return", str(-1e18 if minimum is None else minimum)),
    ]


def sb3_python(venv: Path) -> Path:
    """A virtual environment of SB3's own (numpy 2 and gymnasium 1.x beside DI-engine's stack would not do), made
    once; torch from the same version as dqnkit's."""
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.is_file() or stamp.read_text() != " ".join(SB3_PACKAGES):
        print(f"bench_train: installing {' '.join(SB3_PACKAGES)} into {venv} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *SB3_PACKAGES], check=True)
        stamp.write_text(" ".join(SB3_PACKAGES))
    return python


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


def summarize(runs: list[dict[str, Any]], systems: list[str], baseline: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for system in systems:
        rows = [r for r in runs if r["system"] == system]
        out[system] = {
            "env_steps": median([r["env_steps"] for r in rows]),
            "wall_seconds": median([r["wall_seconds"] for r in rows]),
            "eval_mean": median([r["eval"]["mean"] for r in rows]),
            "success_rate": median([r["eval"]["success_rate"] for r in rows]),
            "stopped": sum(r["stopped_by_stop_value"] for r in rows),
            "solved": sum(r["solved"] for r in rows),
            "runs": len(rows),
        }
    base = out[baseline]
    out["baseline"] = baseline
    out["ratios"] = {
        system: {
            key: out[system][key] / base[key] if base[key] and out[system][key] is not None else None
            for key in ("env_steps", "wall_seconds")
        }
        for system in systems
    }
    return out


def markdown_report(runs: list[dict[str, Any]], summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        f"# Training benchmark, {meta['date']}",
        "",
        f"Machine: {meta['machine']}. Command: `{meta['command']}`.",
        f"Stop checkpoint evaluated greedily on {meta['eval_episodes']} episodes (seeds {EVAL_SEED}+); "
        f"solved = stopped by the stop value and 100-episode mean >= {meta['solved_threshold']}. Env steps and wall "
        "time are those to the stop, or to the end of the budget for a run that did not stop.",
        "",
        "| system | seed | stopped | env steps | wall s | steps/s | threads | eval mean | std | min | success "
        "| solved |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in runs:
        e = r["eval"]
        lines.append(
            f"| {r['system']} | {r['seed']} | {'yes' if r['stopped_by_stop_value'] else 'no'} | {r['env_steps']:,} | "
            f"{r['wall_seconds']:.0f} | {r['env_steps_per_second']:.0f} | {r['torch_threads']} | {e['mean']:.1f} | "
            f"{e['std']:.1f} | {e['min']:.1f} | {e['success_rate']:.0%} | {'yes' if r['solved'] else 'no'} |"
        )
    baseline = summary["baseline"]
    lines += [
        "",
        f"| median | env steps | wall s | eval mean | success | stopped | solved | env steps / {baseline} | "
        f"wall s / {baseline} |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for system in meta["systems"]:
        s, ratio = summary[system], summary["ratios"][system]
        lines.append(
            f"| {system} | {s['env_steps']:,.0f} | {s['wall_seconds']:.0f} | {s['eval_mean']:.1f} | "
            f"{s['success_rate']:.0%} | {s['stopped']}/{s['runs']} | {s['solved']}/{s['runs']} | "
            f"{ratio['env_steps']:.2f}x | {ratio['wall_seconds']:.2f}x |"
        )
    return "\n".join([*lines, ""])


def named_config(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or name in ("stock", "sb3"):
        raise argparse.ArgumentTypeError(f"expected NAME=CONFIG with a name other than stock or sb3, got {text!r}")
    return name, path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--dqnkit",
        type=named_config,
        action="append",
        metavar="NAME=CONFIG",
        help="a dqnkit system: its name and config (repeatable; default dqnkit=configs/lunarlander.py "
        "dqnkit-v3=configs/lunarlander_v3.py); the first one's stop rule judges SB3",
    )
    p.add_argument("--systems", nargs="+", help="which systems, in the order they alternate (default: all)")
    p.add_argument("--baseline", help="ratios against this system (default: sb3 if it runs, else stock)")
    p.add_argument("--stock-config", default=STOCK_CONFIG, help="DI-engine config, relative to site-packages")
    p.add_argument("--stock-env-id", default="LunarLander-v2", help="env id when the stock config names none")
    p.add_argument("--sb3-env-id", default="LunarLander-v3", help="RL Zoo's hyperparameters for this env id")
    p.add_argument("--sb3-venv", type=Path, default=REPO / "benchmarks" / ".sb3-venv", help="made on first use")
    p.add_argument("--max-env-steps", type=int, default=400_000, help="cap per run (SB3: RL Zoo's own if lower)")
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--solved-threshold", type=float, default=200.0)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--tag", default="", help="appended to the results' name: train-<tag>-<date>")
    p.add_argument("--work", type=Path, help="where runs go (default: a folder under --out/bench-runs)")
    p.add_argument("--run-stock", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--seed-one", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.run_stock is not None:
        run_stock(args.stock_config, args.seed_one, args.run_stock, args.max_env_steps, args.stock_env_id)
        return
    args.dqnkit = dict(args.dqnkit or DEFAULT_DQNKIT)
    systems = args.systems or ["stock", *args.dqnkit, "sb3"]
    unknown = [s for s in systems if s not in ("stock", "sb3", *args.dqnkit)]
    if unknown:
        p.error(f"unknown system {unknown[0]!r}: stock, sb3 or a --dqnkit name ({', '.join(args.dqnkit)})")
    baseline = args.baseline or ("sb3" if "sb3" in systems else systems[0])

    stamp = date.today().isoformat()
    work = args.work or args.out / "bench-runs" / f"train-{stamp}-{int(time.time())}"
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in args.seeds:
        for system in systems:
            print(f"bench_train: {system} seed {seed} ...", file=sys.stderr, flush=True)
            runs.append(one_run(system, seed, args, work))
            r = runs[-1]
            print(
                f"  {r['env_steps']:,} env steps, {r['wall_seconds']:.0f} s, eval {r['eval']['mean']:.1f}",
                file=sys.stderr,
                flush=True,
            )
    summary = summarize(runs, systems, baseline)
    meta = {
        "date": stamp,
        "machine": machine(),
        "command": command_line("bench_train.py"),
        "systems": systems,
        "configs": {**args.dqnkit, "stock": args.stock_config, "sb3": f"rl_zoo3 dqn.yml {args.sb3_env_id}"},
        "eval_episodes": args.eval_episodes,
        "solved_threshold": args.solved_threshold,
    }
    data = {"meta": meta, "summary": summary, "runs": runs}
    kind = f"train-{args.tag}" if args.tag else "train"
    base = save_results(args.out, kind, data, markdown_report(runs, summary, meta))
    plot_learning_curves(base.with_suffix(".png"), runs, "system", f"{' vs '.join(systems)}: eval return")


if __name__ == "__main__":
    main()
