"""dqn-eval: evaluate a run, checkpoint, model.pt or model.onnx; watch it in a window or record a video."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dqnkit.cli.common import make_parser, non_negative_int, positive_int
from dqnkit.errors import run_command

EPILOG = """\
examples:
  dqn-eval                                        # the newest run under runs/, 20 greedy episodes
  dqn-eval runs/lunarlander_dqn_seed0 --episodes 100 --envs 8 --json report.json
  dqn-eval runs/lunarlander_dqn_seed0/export/model.onnx --render     # a window at 50 fps (video without a display)
  dqn-eval runs/cartpole_dqn_seed0 --video cartpole.mp4 --episodes 3  # .mp4 or .gif
  dqn-eval runs/a runs/b --episodes 100 --envs 8     # B - A on the same episodes, with its 95% interval
  dqn-eval runs/pong_dqn_seed0/export/model.onnx --episodes 30 --envs 8   # Atari: the standard protocol

Atari models play by the standard evaluation protocol: full games (not lives), unclipped score, up to 30 no-op
starts, epsilon 0.05 (--epsilon 0.001 for the other common choice), at most 108,000 frames a game; the report adds
the human-normalized score for games with published random and human scores.

Episode i uses seed SEED+i, so a checkpoint, its model.pt and its model.onnx give the same returns.
An ONNX evaluation needs only onnxruntime, gym/Gymnasium and ale-py (it does not import torch or DI-engine).
"""


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("dqn-eval", __doc__ or "", EPILOG)
    p.add_argument(
        "model",
        nargs="*",
        help="run folder, checkpoint, model.pt or model.onnx (default: newest run); two: compared on the same episodes",
    )
    p.add_argument("--env", help="environment id (default: the one the model was trained on)")
    p.add_argument("--episodes", type=positive_int, default=20, help="number of episodes (default 20)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="episode i uses seed SEED+i (default 0)")
    p.add_argument(
        "--epsilon",
        type=probability,
        help="random-action probability (default 0: greedy; Atari models 0.05, the standard protocol)",
    )
    p.add_argument("--render", action="store_true", help="watch in a window (records a video when there is no display)")
    p.add_argument("--video", type=Path, metavar="PATH", help="record all episodes to PATH (.mp4 or .gif)")
    p.add_argument(
        "--agent-view",
        action="store_true",
        help="Atari: show the agent's 84x84 input beside the game screen (with --render or --video)",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="write the report as JSON")
    p.add_argument(
        "--envs",
        type=positive_int,
        default=1,
        help="parallel envs with batched inference (not with rendering)",
    )
    p.add_argument("--config", metavar="FILE", help="training config; needed only for plain DI-engine checkpoints")
    p.add_argument(
        "--runs-dir", type=Path, default=Path("runs"), help="where to look for the newest run (default runs/)"
    )
    p.add_argument("--quiet", action="store_true", help="print only the summary line")
    return p


def format_report(report: Any) -> str:
    lines = [f"{'episode':>7} {'seed':>6} {'return':>9} {'length':>7}  outcome"]
    for e in report.episodes:
        lines.append(f"{e.index + 1:>7} {e.seed:>6} {e.episode_return:>9.2f} {e.length:>7}  {e.outcome or '-'}")
    lines.append(summary_line(report))
    return "\n".join(lines)


def _interval(bounds: list[float] | None, fmt: str) -> str:
    return f"; 95% CI {bounds[0]:{fmt}} to {bounds[1]:{fmt}}" if bounds is not None else ""


def summary_line(report: Any) -> str:
    s = report.stats
    success = (
        f" success {s['success_rate']:.0%} (>= {report.reward_threshold:g}{_interval(s['success_rate_ci95'], '.0%')}),"
        if s["success_rate"] is not None
        else ""
    )
    return (
        f"{report.env_id} {report.kind} {report.model}: {s['episodes']} episodes,"
        f" return {s['mean']:.2f} ± {s['std']:.2f}{_interval(s['mean_ci95'], '.2f')}"
        f" (median {s['median']:.2f}, min {s['min']:.2f}, max {s['max']:.2f}),{success} mean length"
        f" {s['mean_length']:.1f}, {s['env_steps_per_second']:,.0f} env steps/s{_normalized(s)}"
    )


def _normalized(stats: dict[str, Any]) -> str:
    score = stats.get("human_normalized")
    return f", human-normalized score {score:.1%}" if score is not None else ""


def comparison_line(comparison: dict[str, Any]) -> str:
    c = comparison
    return (
        f"{c['b']} - {c['a']}: mean return difference {c['mean_difference']:+.2f}"
        f"{_interval(c['difference_ci95'], '+.2f')} over {c['episodes']} paired episodes"
        f" ({c['b_better']} better, {c['a_better']} worse)"
    )


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if len(args.model) > 2:
        build_parser().error(f"{len(args.model)} models given: evaluate one, or compare two")
    if args.agent_view and not (args.render or args.video is not None):
        build_parser().error("--agent-view adds to what --render or --video shows: give one of them")
    if len(args.model) == 2 and (args.render or args.video is not None):
        build_parser().error("--render and --video show one model: leave one of the two out")

    def command() -> int:
        from dqnkit.evaluate import VIDEO_SUFFIXES, compare, evaluate, paired_agents
        from dqnkit.quiet import silence_warnings
        from dqnkit.runfolder import newest_run
        from dqnkit.validate import writable_file

        silence_warnings()
        if args.video is not None:
            writable_file(args.video, "--video", VIDEO_SUFFIXES)
        if args.json is not None:
            writable_file(args.json, "--json")
        models = args.model
        if not models:
            models = [newest_run(args.runs_dir)]
            print(f"dqn-eval: evaluating {models[0]} (the newest run under {args.runs_dir}/)", file=sys.stderr)
        if len(models) == 2:  # both checked before either plays
            models = paired_agents(models, args.env, args.config)
        reports = [
            evaluate(
                model,
                env_id=args.env,
                episodes=args.episodes,
                seed=args.seed,
                epsilon=args.epsilon,
                n_envs=args.envs,
                render=args.render,
                video=args.video,
                log=lambda line: print(f"dqn-eval: {line}", file=sys.stderr),
                config_path=args.config,
                agent_view=args.agent_view,
            )
            for model in models
        ]
        for report in reports:
            print(summary_line(report) if args.quiet else format_report(report))
        output = reports[0].to_json()
        if len(reports) == 2:
            comparison = compare(*reports)
            print(comparison_line(comparison))
            output = {"models": [r.to_json() for r in reports], "comparison": comparison}
        if args.json is not None:
            args.json.write_text(json.dumps(output, indent=2) + "\n")
        return 0

    run_command("dqn-eval", command)


if __name__ == "__main__":
    main()
