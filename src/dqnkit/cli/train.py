"""dqn-train: train a DQN agent from a DI-engine config through DI-engine's middleware pipeline."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from dqnkit.cli.common import add_set_option, finite_float, make_parser, non_negative_int, positive_int, seed_list
from dqnkit.errors import UserError, run_command
from dqnkit.nodes import ROLES, Node, default_role, tcp_address  # stdlib only: --help stays fast
from dqnkit.signals import stop_on_signals

EPILOG = """\
examples:
  dqn-train --config configs/cartpole.py                 # about a minute on 2 cores
  dqn-train --config configs/lunarlander.py --seed 1
  dqn-train --config configs/cartpole.py --set policy.learn.learning_rate=5e-4 --max-env-steps 20000
  dqn-train --resume runs/cartpole_dqn_seed0             # continue counters, optimizer, target net, epsilon
  dqn-train --config configs/cartpole.py --workers 3     # learner, evaluator, collector: 3 processes
  dqn-train --config configs/lunarlander.py --seeds 0-7 --parallel 2   # 8 run folders, then a table

distributed over hosts (DI-engine's Parallel runtime over nng; node 0 learner, 1 evaluator, 2+ collectors):
  host A: dqn-train --config C --node-id 0 --address 10.0.0.4 --ports 50515
  host A: dqn-train --config C --node-id 1 --address 10.0.0.4 --ports 50516 --attach-to tcp://10.0.0.4:50515
  host B: dqn-train --config C --node-id 2 --address 10.0.0.5 --ports 50517 \\
            --attach-to tcp://10.0.0.4:50515,tcp://10.0.0.4:50516
Nodes exchange pickled messages: run them only on a network you trust.

A run folder (runs/<exp-name>/) gets config.py/config.yaml, metrics.csv, TensorBoard logs, best/latest/final
checkpoints, summary.json and curve.png. Python configs are code: load only configs you trust.
"""


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("dqn-train", __doc__ or "", EPILOG)
    p.add_argument("--config", help="DI-engine-style config (.py or .yaml) with main_config and create_config")
    p.add_argument("--seed", type=non_negative_int, help="random seed (default 0; on --resume, the run's seed)")
    p.add_argument(
        "--seeds",
        type=seed_list,
        help="several seeds, e.g. 0-7 or 0,3,5: one run folder each (<exp-name>_seed<S>), then a summary table",
    )
    p.add_argument("--parallel", type=positive_int, help="with --seeds: how many run at a time (default 1)")
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
    add_set_option(p, "override a config key, e.g. policy.learn.batch_size=128 (repeatable; values are YAML scalars)")
    p.add_argument("--resume", metavar="RUN_DIR_OR_CKPT", help="continue a run from its newest checkpoint")
    p.add_argument("--quiet", action="store_true", help="print only the final summary")
    dist = p.add_argument_group("distributed training (DI-engine's Parallel runtime)")
    dist.add_argument(
        "--workers",
        type=positive_int,
        help="N processes on this machine: a learner, an evaluator and N-2 collectors (N >= 3)",
    )
    dist.add_argument("--node-id", type=non_negative_int, help="run one node of a multi-host run (0 is the learner)")
    dist.add_argument(
        "--role",
        choices=ROLES,
        help="this node's role (default from --node-id: 0 learner, 1 evaluator, others collector)",
    )
    dist.add_argument("--address", help="with --node-id: the address this node listens on, e.g. 10.0.0.4")
    dist.add_argument("--ports", type=positive_int, metavar="PORT", help="with --node-id: the port it listens on")
    dist.add_argument(
        "--attach-to",
        default="",
        metavar="ADDRS",
        help="with --node-id: comma-separated tcp://HOST:PORT of the nodes started before this one",
    )
    return p


def _node(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Node | None:
    """The one node this command runs in a multi-host run, or None."""
    node_flags = [args.role, args.address, args.ports, args.attach_to or None]
    if args.node_id is None:
        if any(flag is not None for flag in node_flags):
            parser.error("--role, --address, --ports and --attach-to need --node-id")
        return None
    if args.workers is not None:
        parser.error("--workers starts every node on this machine; leave out --node-id")
    if args.address is None or args.ports is None:
        parser.error("--node-id needs --address and --ports (where this node listens)")
    attach_to = tuple(a.strip() for a in args.attach_to.split(",") if a.strip())
    try:
        for address in attach_to:
            tcp_address(address)
    except UserError as e:
        parser.error(f"--attach-to: {e}")
    role = args.role or default_role(args.node_id)
    if role != "learner" and not attach_to:
        parser.error(f"a {role} node needs --attach-to (the learner's and other nodes' addresses)")
    return Node(args.node_id, role, f"tcp://{args.address}:{args.ports}", attach_to)


def _options(args: argparse.Namespace, argv: list[str]) -> Any:
    from dqnkit.train.plan import TrainOptions

    return TrainOptions(
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
        command=shlex.join(["dqn-train", *argv]),
    )


def _check_seeds(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.seeds is None:
        if args.parallel is not None:
            parser.error("--parallel runs several --seeds at a time: give --seeds too")
        return
    for flag, value in (("--seed", args.seed), ("--resume", args.resume), ("--workers", args.workers)):
        if value is not None:
            parser.error(f"--seeds trains fresh single-process runs: leave out {flag}")
    if args.node_id is not None:
        parser.error("--seeds trains on this machine: leave out --node-id")
    if args.config is None:
        parser.error("--seeds needs --config")


def _train_seeds(args: argparse.Namespace, argv: list[str]) -> int:
    """Every option but --seeds/--parallel/--exp-name goes to each seed's dqn-train."""
    from pathlib import Path

    from dqnkit.train.plan import plan_run, run_name
    from dqnkit.train.seeds import train_seeds

    child: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=")[0]
        if name in ("--seeds", "--parallel", "--exp-name"):
            skip = "=" not in arg
            continue
        child.append(arg)
    plan = plan_run(_options(args, child), writes_run_folder=False)  # the config's mistakes: once, before any run
    base = args.exp_name or run_name(plan.main, args.config)
    return train_seeds(child, args.seeds, args.parallel or 1, Path(args.runs_dir), base)


def main(argv: list[str] | None = None) -> None:
    stop_on_signals()  # before the heavy imports: a signal at any moment ends with its exit code
    args = build_parser().parse_args(argv)
    if args.config is None and args.resume is None:
        build_parser().error("--config is required unless --resume is given")
    _check_seeds(args, build_parser())
    node = _node(args, build_parser())

    def command() -> int:
        if args.seeds is not None:
            return _train_seeds(args, sys.argv[1:] if argv is None else argv)
        from dqnkit.train.launch import launch_local, train_node
        from dqnkit.train.pipeline import train

        options = _options(args, sys.argv[1:] if argv is None else argv)
        if args.workers is not None:
            return launch_local(options, args.workers)
        if node is not None:
            return train_node(options, node)
        return train(options)

    run_command("dqn-train", command)


if __name__ == "__main__":
    main()
