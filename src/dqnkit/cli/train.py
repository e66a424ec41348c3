"""dqn-train: train a DQN agent from a DI-engine config through DI-engine's middleware pipeline."""

from __future__ import annotations

import argparse
import shlex
import sys

from dqnkit.cli.common import finite_float, make_parser, non_negative_int, positive_int, run

EPILOG = """\
examples:
  dqn-train --config configs/cartpole.py                 # about a minute on 2 cores
  dqn-train --config configs/lunarlander.py --seed 1
  dqn-train --config configs/cartpole.py --set policy.learn.learning_rate=5e-4 --max-env-steps 20000
  dqn-train --resume runs/cartpole_dqn_seed0             # continue counters, optimizer, target net, epsilon

A run folder (runs/<exp-name>/) gets config.py/config.yaml, metrics.csv, TensorBoard logs, best/latest/final
checkpoints, summary.json and curve.png. Python configs are code: load only configs you trust.
"""


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("dqn-train", __doc__ or "", EPILOG)
    p.add_argument("--config", help="DI-engine-style config (.py or .yaml) with main_config and create_config")
    p.add_argument("--seed", type=non_negative_int, help="random seed (default 0; on --resume, the run's seed)")
    p.add_argument("--exp-name", help="run folder name under --runs-dir (default: <config exp_name>_seed<S>)")
    p.add_argument("--runs-dir", default="runs", help="where run folders go (default: runs/)")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: cuda when available (default)",
    )
    p.add_argument("--max-env-steps", type=positive_int, help="stop after this many env steps")
    p.add_argument("--max-train-iters", type=positive_int, help="stop after this many train iterations")
    p.add_argument("--stop-value", type=finite_float, help="stop when the eval mean return reaches this")
    p.add_argument("--env-manager", choices=("base", "subprocess"), help="in-process envs or one process each")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. policy.learn.batch_size=128 (repeatable; values are YAML scalars)",
    )
    p.add_argument("--resume", metavar="RUN_DIR_OR_CKPT", help="continue a run from its newest checkpoint")
    p.add_argument("--quiet", action="store_true", help="print only the final summary")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.config is None and args.resume is None:
        build_parser().error("--config is required unless --resume is given")

    def command() -> int:
        from dqnkit.pipeline import TrainOptions, train

        options = TrainOptions(
            config=args.config,
            seed=args.seed,
            exp_name=args.exp_name,
            runs_dir=args.runs_dir,
            device=args.device,
            max_env_steps=args.max_env_steps,
            max_train_iters=args.max_train_iters,
            stop_value=args.stop_value,
            env_manager=args.env_manager,
            overrides=args.overrides,
            resume=args.resume,
            quiet=args.quiet,
            command=shlex.join(["dqn-train", *(sys.argv[1:] if argv is None else argv)]),
        )
        return train(options).exit_code

    run("dqn-train", command)


if __name__ == "__main__":
    main()
