"""Benchmark: the DQN family (DQN, C51, QR-DQN, IQN, Rainbow) on LunarLander, side by side on this machine.

For every seed it trains each type with dqnkit (configs/lunarlander.py and configs/lunarlander_<type>.py: the same
settings but for the network and the loss), in an order that rotates with the seed, and records env steps and wall
seconds to the stop, the stop checkpoint's greedy evaluation on fixed seeds (1000, 1001, ...) and the learning
curve. Writes benchmarks/results/family-<date>.{json,md,png}; rerunning with the same --work reuses finished runs.

    python scripts/bench_family.py                        # LunarLander, seeds 0 1 2, all types (hours on 2 cores)
    python scripts/bench_family.py --seeds 0 --types dqn c51 --configs configs/cartpole --max-env-steps 3000
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

from bench_train import greedy_eval, read_curve
from results_io import RESULTS, command_line, machine, plot_learning_curves, save_results

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TYPES = ("dqn", "c51", "qrdqn", "iqn", "rainbow")


def config_for(prefix: str, policy_type: str) -> str:
    """configs/lunarlander.py for DQN, configs/lunarlander_<type>.py for the others."""
    return f"{prefix}.py" if policy_type == "dqn" else f"{prefix}_{policy_type}.py"


def one_run(policy_type: str, seed: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out = work / f"{policy_type}_seed{seed}"
    if not (out / "summary.json").is_file():
        cmd = [str(BIN / "dqn-train"), "--config", config_for(args.configs, policy_type), "--seed", str(seed)]
        cmd += ["--runs-dir", str(work), "--exp-name", out.name, "--max-env-steps", str(args.max_env_steps)]
        quiet_env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        subprocess.run(
            [*cmd, "--quiet"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=quiet_env
        )
    else:
        print(f"  reusing the finished run in {out}", file=sys.stderr)
    summary = json.loads((out / "summary.json").read_text())
    stopped = summary["stop_reason"] == "stop_value"
    checkpoint = out / ("best.pth.tar" if stopped else "final.pth.tar")
    return {
        "type": policy_type,
        "seed": seed,
        "stopped": stopped,
        "env_steps": summary["env_steps"],
        "wall_seconds": summary["wall_seconds"],
        "env_steps_per_second": summary["env_steps"] / summary["wall_seconds"],
        "eval": greedy_eval(checkpoint, args.eval_episodes, None),
        "checkpoint": str(checkpoint),
        "curve": read_curve(out / "metrics.csv"),
    }


def exports(run: dict[str, Any], episodes: int) -> dict[str, Any]:
    """The run's stop checkpoint as fp32 ONNX and reduced to fp16 and int8: size, batch-1 latency, greedy-action
    agreement on visited states and mean return over seeded episodes, with dqn-export's behaviour check (whose
    verdict is recorded, not enforced: a refused model is a result here)."""
    from dqnkit import precision
    from dqnkit.envs import env_facts
    from dqnkit.export import DEFAULT_OPSET, PARITY_OBSERVATIONS, build_metadata, onnx_bytes, parity_observations
    from dqnkit.network import load_network
    from dqnkit.quiet import silence_warnings

    silence_warnings()
    net = load_network(run["checkpoint"])
    facts = env_facts(net.env_ref)
    meta = build_metadata(net, facts)
    fp32 = onnx_bytes(net, meta, DEFAULT_OPSET)
    visited = parity_observations(net, facts, PARITY_OBSERVATIONS)[: PARITY_OBSERVATIONS // 2]
    reference = precision.Reference.measure(fp32, visited, episodes)
    out: dict[str, Any] = {
        "fp32": {
            "bytes": reference.size,
            "batch_1_latency_us": reference.latency_us,
            "mean_return": statistics.fmean(reference.returns),
        }
    }
    for name in precision.PRECISIONS:
        out[name] = precision.check_behaviour(reference, precision.convert(fp32, name), visited)
    return out


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(runs: list[dict[str, Any]], types: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for policy_type in types:
        rows = [r for r in runs if r["type"] == policy_type]
        out[policy_type] = {
            "env_steps": median([r["env_steps"] for r in rows]),
            "wall_seconds": median([r["wall_seconds"] for r in rows]),
            "eval_mean": median([r["eval"]["mean"] for r in rows]),
            "success_rate": median([r["eval"]["success_rate"] for r in rows]),
            "stopped": sum(r["stopped"] for r in rows),
            "runs": len(rows),
        }
    return out


def markdown_report(runs: list[dict[str, Any]], summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        f"# DQN family benchmark, {meta['date']}",
        "",
        f"Machine: {meta['machine']}. Command: `{meta['command']}`.",
        f"Each run to dqnkit's stop rule or {meta['max_env_steps']:,} env steps; the stop checkpoint (the final one "
        f"where a run did not stop) evaluated greedily on {meta['eval_episodes']} episodes (seeds 1000+).",
        "",
        "| type | seed | stopped | env steps | wall s | steps/s | eval mean | std | min | success |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        e = r["eval"]
        lines.append(
            f"| {r['type']} | {r['seed']} | {'yes' if r['stopped'] else 'no'} | {r['env_steps']:,} | "
            f"{r['wall_seconds']:.0f} | {r['env_steps_per_second']:.0f} | {e['mean']:.1f} | {e['std']:.1f} | "
            f"{e['min']:.1f} | {e['success_rate']:.0%} |"
        )
    lines += [
        "",
        "| median | env steps | wall s | eval mean | success | runs stopped |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for policy_type, s in summary.items():
        lines.append(
            f"| {policy_type} | {s['env_steps']:,.0f} | {s['wall_seconds']:.0f} | {s['eval_mean']:.1f} | "
            f"{s['success_rate']:.0%} | {s['stopped']}/{s['runs']} |"
        )
    if meta.get("exports"):
        lines += [
            "",
            f"Exports of each type's seed-{meta['exports_seed']} stop checkpoint: ONNX at fp32, fp16 and int8 "
            "(ONNX Runtime, one thread); agreement = the same greedy action as fp32 on visited states; return = mean "
            f"over {meta['export_episodes']} seeded episodes; kept = dqn-export's behaviour check passed.",
            "",
            "| type | precision | bytes | batch-1 us | agreement | return | kept |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for policy_type, table in meta["exports"].items():
            fp32 = table["fp32"]
            lines.append(
                f"| {policy_type} | fp32 | {fp32['bytes']:,} | {fp32['batch_1_latency_us']:.1f} | - | "
                f"{fp32['mean_return']:.1f} | - |"
            )
            for name in ("fp16", "int8"):
                r = table[name]
                lines.append(
                    f"| {policy_type} | {name} | {r['bytes']:,} | {r['batch_1_latency_us']:.1f} | "
                    f"{r['action_agreement']:.1%} | {r['mean_return']:.1f} | {'yes' if r['passed'] else 'no'} |"
                )
    return "\n".join([*lines, ""])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--types", nargs="+", choices=TYPES, default=list(TYPES))
    p.add_argument("--configs", default=str(REPO / "configs" / "lunarlander"), help="config path without .py")
    p.add_argument("--max-env-steps", type=int, default=160_000, help="cap per run")
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--work", type=Path, help="where runs go (default: a folder under --out/bench-runs)")
    p.add_argument("--export-episodes", type=int, default=20, help="episodes per precision in the exports table")
    p.add_argument("--no-exports", action="store_true", help="leave out the exports table")
    args = p.parse_args()

    stamp = date.today().isoformat()
    work = args.work or args.out / "bench-runs" / f"family-{stamp}-{int(time.time())}"
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in args.seeds:
        shift = seed % len(args.types)
        for policy_type in args.types[shift:] + args.types[:shift]:  # no type always first on a warm machine
            print(f"bench_family: {policy_type} seed {seed} ...", file=sys.stderr, flush=True)
            runs.append(one_run(policy_type, seed, args, work))
            r = runs[-1]
            print(
                f"  {r['env_steps']:,} env steps, {r['wall_seconds']:.0f} s, eval {r['eval']['mean']:.1f}",
                file=sys.stderr,
            )
    runs.sort(key=lambda r: (args.types.index(r["type"]), r["seed"]))
    summary = summarize(runs, args.types)
    meta = {
        "date": stamp,
        "machine": machine(),
        "command": command_line("bench_family.py"),
        "max_env_steps": args.max_env_steps,
        "eval_episodes": args.eval_episodes,
        "export_episodes": args.export_episodes,
        "exports_seed": args.seeds[0],
        "exports": {}
        if args.no_exports
        else {r["type"]: exports(r, args.export_episodes) for r in runs if r["seed"] == args.seeds[0]},
    }
    base = save_results(
        args.out, "family", {"meta": meta, "summary": summary, "runs": runs}, markdown_report(runs, summary, meta)
    )
    plot_learning_curves(base.with_suffix(".png"), runs, "type", "The DQN family on dqnkit: eval return")


if __name__ == "__main__":
    main()
