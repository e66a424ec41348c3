"""Diagnosis: does a pixel network still look at the screen? For each checkpoint of Atari runs, the share of its
conv layers' ReLU units that are positive on real frames, and how much its Q-values vary across those frames.

A network whose first conv layer has died (no unit positive on any frame) outputs the same Q-values for every
screen; benchmarks/NOTES.md ("Pong's first conv layer died") has the case that prompted this.

    python scripts/live_units.py runs/pong_dqn_seed0 [more run folders or .pth.tar files] [--frames 256]

Frames come from random play of the run's game with its recorded preprocessing (as dqn-eval builds it, seed 0).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from results_io import RESULTS, command_line, machine, save_results


def checkpoints(target: Path) -> list[Path]:
    """A run folder's checkpoints: best, the periodic ones by iteration, final; or the file given."""
    if target.is_file():
        return [target]

    def iteration(path: Path) -> int:
        found = re.search(r"iteration_(\d+)", path.name)
        return int(found.group(1)) if found else 0

    periodic = sorted(target.glob("iteration_*.pth.tar"), key=iteration)
    ends = [target / name for name in ("best.pth.tar", "final.pth.tar") if (target / name).is_file()]
    return [*ends[:1], *periodic, *ends[1:]]


def random_frames(net: Any, count: int) -> torch.Tensor:
    from dqnkit.envs import make_raw_env, reset_env, step_env

    if net.obs_dtype != "uint8":
        raise SystemExit(f"{net.source}: trained on {net.env_id}, not on frames")
    env = make_raw_env(net.env_ref)
    rng = np.random.default_rng(0)
    obs = reset_env(env, 0)
    frames = []
    for _ in range(count):
        obs, _, done, _ = step_env(env, int(rng.integers(net.action_count)))
        frames.append(np.array(obs, copy=True))
        if done:
            obs = reset_env(env, None)
    env.close()
    return torch.from_numpy(np.stack(frames))


def probe(path: Path, frames: int) -> dict[str, Any]:
    from dqnkit.network import load_network

    net = load_network(path)
    obs = random_frames(net, frames)
    convs = [m for m in net.model.encoder.main if isinstance(m, torch.nn.Conv2d)]
    live: list[float] = []
    hooks = [c.register_forward_hook(lambda _m, _i, out: live.append(float((out > 0).float().mean()))) for c in convs]
    with torch.no_grad():
        q = net.q_module()(obs)
    for hook in hooks:
        hook.remove()
    return {
        "checkpoint": str(path),
        "train_iter": int(net.checkpoint["train_iter"]),
        "env_step": int(net.checkpoint["env_step"]),
        "live_units": live,  # per conv layer, share of (unit, position, frame) activations above zero
        "q_std_over_frames": float(q.std(0).mean()),
        "q_mean": float(q.mean()),
    }


def markdown(data: dict[str, Any]) -> str:
    lines = [
        "# Live conv units and Q-value spread over real frames",
        "",
        f"`{data['command']}` on {data['machine']}, {data['frames']} frames of random play.",
        "",
        "| checkpoint | env steps | updates | live units, conv 1 / 2 / 3 | Q std over frames | mean Q |",
        "| --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for r in data["checkpoints"]:
        live = " / ".join(f"{100 * x:.0f}%" for x in r["live_units"])
        name = "/".join(Path(r["checkpoint"]).parts[-2:])
        lines.append(
            f"| {name} | {r['env_step']:,} | {r['train_iter']:,} | {live} | {r['q_std_over_frames']:.4f} | "
            f"{r['q_mean']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="+", type=Path, help="run folders or checkpoint files")
    parser.add_argument("--frames", type=int, default=256, help="frames of random play to probe with")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the .json and .md go")
    args = parser.parse_args()
    torch.set_num_threads(1)
    paths = [path for target in args.targets for path in checkpoints(target)]
    if not paths:
        parser.error("no checkpoints found in " + ", ".join(map(str, args.targets)))
    data = {
        "command": command_line("live_units.py"),
        "machine": machine(),
        "frames": args.frames,
        "checkpoints": [probe(path, args.frames) for path in paths],
    }
    save_results(args.out, "live-units", data, markdown(data))


if __name__ == "__main__":
    main()
