"""Benchmark: one process against `dqn-train --workers N` (DI-engine's Parallel runtime) on this machine.

Two measurements per setting, each a real dqn-train run:
- solve: the config trained to its stop value; env steps, learner wall seconds and whole-command seconds;
- throughput: a fixed env-step budget with no stop value; env steps per second of the learner.

Writes benchmarks/results/workers-<config name>-<date>.{json,md}.

    python scripts/bench_workers.py --workers 1 3 4 5 --seeds 0 1 2
    python scripts/bench_workers.py --config configs/lunarlander.py --throughput-steps 20000 --no-solve
    python scripts/bench_workers.py --config configs/lunarlander.py --workers 3 --seeds 0 --no-throughput \
        --max-env-steps 160000 --tag solve
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from results_io import RESULTS, command_line, machine, save_results

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def train(config: str, workers: int, seed: int, extra: list[str], work: Path) -> dict[str, Any]:
    name = f"w{workers}_s{seed}_{len(list(work.iterdir()))}"
    command = [str(BIN / "dqn-train"), "--config", config, "--seed", str(seed), "--runs-dir", str(work)]
    command += ["--exp-name", name, "--quiet", *extra]
    if workers > 1:
        command += ["--workers", str(workers)]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    command_seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    summary = json.loads((work / name / "summary.json").read_text())
    return {
        "workers": workers,
        "seed": seed,
        "stop_reason": summary["stop_reason"],
        "env_steps": summary["env_steps"],
        "train_iters": summary["train_iters"],
        "learner_seconds": summary["wall_seconds"],
        "command_seconds": round(command_seconds, 2),
        "env_steps_per_second": round(summary["env_steps"] / summary["wall_seconds"], 1),
        "best_eval": summary["best_eval"],
    }


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "configs" / "cartpole.py"))
    p.add_argument("--workers", type=int, nargs="+", default=[1, 3, 4, 5], help="1 = a single process")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--throughput-steps", type=int, default=10_000, help="env steps of each throughput run")
    p.add_argument("--no-solve", action="store_true", help="throughput runs only")
    p.add_argument("--no-throughput", action="store_true", help="solve runs only")
    p.add_argument("--max-env-steps", type=int, help="cap on each solve run (default: the config's own)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--tag", default="", help="appended to the results file name (workers-<config>-<tag>-<date>)")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    solve: list[dict[str, Any]] = []
    throughput: list[dict[str, Any]] = []
    for seed in args.seeds:
        for workers in args.workers:  # settings alternate within a seed, so machine load drifts evenly
            if not args.no_solve:
                cap = ["--max-env-steps", str(args.max_env_steps)] if args.max_env_steps else []
                solve.append(train(args.config, workers, seed, cap, work))
                print(json.dumps(solve[-1]), file=sys.stderr)
            if not args.no_throughput:
                limit = ["--max-env-steps", str(args.throughput_steps), "--stop-value", "1e9"]
                throughput.append(train(args.config, workers, seed, limit, work))
                print(json.dumps(throughput[-1]), file=sys.stderr)

    lines = [
        f"# One process vs --workers N, {date.today().isoformat()}",
        "",
        f"Machine: {machine()}. Config: `{Path(args.config).name}`. Command: `{command_line('bench_workers.py')}`.",
        "Workers 1 is a single process; N >= 3 is 1 learner + 1 evaluator + N-2 collectors. Medians over seeds "
        f"{args.seeds}.",
        "",
        "| workers | solved | env steps to stop | learner s to stop | command s | throughput env steps/s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workers in args.workers:
        tp = [r for r in throughput if r["workers"] == workers]
        sv = [r for r in solve if r["workers"] == workers]
        solved = sum(r["stop_reason"] == "stop_value" for r in sv)
        cells = ["-", "-", "-", "-"]
        if sv:
            cells = [
                f"{solved}/{len(sv)}",
                f"{_median(sv, 'env_steps'):,.0f}",
                f"{_median(sv, 'learner_seconds'):.1f}",
                f"{_median(sv, 'command_seconds'):.1f}",
            ]
        rate = f"{_median(tp, 'env_steps_per_second'):,.0f}" if tp else "-"
        lines.append(f"| {workers} | " + " | ".join([*cells, rate]) + " |")
    result = {
        "date": date.today().isoformat(),
        "machine": machine(),
        "command": command_line("bench_workers.py"),
        "config": args.config,
        "solve": solve,
        "throughput": throughput,
    }
    kind = "-".join(["workers", Path(args.config).stem, *([args.tag] if args.tag else [])])
    save_results(args.out, kind, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
