"""Soak: resident memory of a long LunarLander training run, sampled every second (trainer plus env workers).
RSS grows while the replay buffer (100k transitions) fills; after that it should stay flat. Writes
benchmarks/results/memory-<date>.{json,md}.

    python scripts/soak_memory.py --max-env-steps 160000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from results_io import RESULTS, command_line, save_results

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tree_rss_mib(pid: int) -> float:
    """RSS of a process and its children, from /proc (no psutil needed)."""
    pids = [pid]
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    pids += [int(c) for c in children]
    total_kib = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def env_steps_so_far(run: Path) -> int:
    metrics = run / "metrics.csv"
    if not metrics.is_file():
        return 0
    lines = metrics.read_text().splitlines()
    return int(lines[-1].split(",")[0]) if len(lines) > 1 else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "configs" / "lunarlander.py"))
    p.add_argument("--max-env-steps", type=int, default=160_000)
    p.add_argument(
        "--buffer-size",
        type=int,
        default=100_000,
        help="replay buffer size (set in the config); a small one reaches the steady state sooner",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--tag", default="", help="appended to the results file name (memory-<tag>-<date>)")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    cmd = [
        str(BIN / "dqn-train"),
        "--config",
        args.config,
        "--runs-dir",
        str(work),
        "--exp-name",
        "soak",
        "--max-env-steps",
        str(args.max_env_steps),
        "--stop-value",
        "1e9",
        "--set",
        f"policy.other.replay_buffer.replay_buffer_size={args.buffer_size}",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples = []
    started = time.monotonic()
    while proc.poll() is None:
        samples.append(
            {
                "seconds": round(time.monotonic() - started, 1),
                "env_step": env_steps_so_far(work / "soak"),
                "rss_mib": round(tree_rss_mib(proc.pid), 1),
            }
        )
        time.sleep(1.0)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    after_fill = [s for s in samples if s["env_step"] >= args.buffer_size]
    if not after_fill:
        raise SystemExit(f"the replay buffer never filled ({args.buffer_size} transitions): raise --max-env-steps")
    tail = after_fill
    result = {
        "date": date.today().isoformat(),
        "command": command_line("soak_memory.py"),
        "max_env_steps": args.max_env_steps,
        "buffer_size": args.buffer_size,
        "peak_rss_mib": max(s["rss_mib"] for s in samples),
        "rss_at_start_of_window_mib": tail[0]["rss_mib"],
        "rss_at_end_mib": tail[-1]["rss_mib"],
        "window": f"env_step >= {args.buffer_size} (buffer full)",
        "samples": samples,
    }
    text = (
        f"# Memory soak, {result['date']}\n\nCommand: `{result['command']}`.\n\n"
        f"Peak RSS (trainer + env workers): {result['peak_rss_mib']:.0f} MiB. Over {result['window']}: "
        f"{result['rss_at_start_of_window_mib']:.0f} MiB -> {result['rss_at_end_mib']:.0f} MiB.\n"
    )
    save_results(args.out, f"memory-{args.tag}" if args.tag else "memory", result, text)


if __name__ == "__main__":
    main()
