"""dqn-tune: search a config's hyperparameters with Optuna, judging each sampled configuration on several seeds."""

from __future__ import annotations

import argparse

from dqnkit.cli.common import add_set_option, make_parser, positive_int
from dqnkit.errors import run_command
from dqnkit.signals import stop_on_signals

EPILOG = """\
examples:
  dqn-tune --config configs/cartpole.py --trials 20 --seeds 3 --max-env-steps 30000
  dqn-tune --config configs/lunarlander.py --print-space > space.yaml     # the default space, to edit
  dqn-tune --config configs/lunarlander.py --space space.yaml --set policy.nstep=3
  dqn-tune --config configs/cartpole.py --trials 20 --seeds 3 --recheck 3 --recheck-seeds 5
  dqn-train --config studies/cartpole_dqn/best_config.py                   # train the best configuration

several machines, one study (Optuna's RDB storage; `pip install` nothing more):
  host A: dqn-tune --config C --study ll --storage postgresql://user:pw@10.0.0.4/optuna
  host B: dqn-tune --config C --study ll --storage postgresql://user:pw@10.0.0.4/optuna

Each trial trains its configuration on seeds 0..K-1 (real dqn-train runs, --jobs at a time) with --max-env-steps
each. Objective `steps` (default, minimized): the median over seeds of env steps to the config's stop rule; a seed
that does not stop counts as the budget plus up to one more budget by how far it fell short. Objective `area`
(maximized): the median area under the evaluation curve. Poor trials are pruned on their median evaluation curve.
The study folder (studies/<study>/) gets trials/, trials.csv, best_config.py and PNG plots. Ctrl-C keeps the study
consistent: the same command continues it, running the interrupted trial's values again.

The best of many trials scored on a few seeds is partly a lucky draw. --recheck K trains the search's K best
trials again on M fresh seeds (the M after the search's own) once it has its trials, and best_config.py becomes the
one that scores best on them; add it to a finished study's command to recheck that study.
"""


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("dqn-tune", __doc__ or "", EPILOG)
    p.add_argument("--config", required=True, help="the config to tune (.py or .yaml, as for dqn-train)")
    p.add_argument(
        "--trials", type=positive_int, default=20, help="completed or pruned trials the study ends with (default 20)"
    )
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds each trial trains on: 0..K-1 (default 3)")
    p.add_argument("--jobs", type=positive_int, help="training runs at a time (default: --seeds, all of a trial)")
    p.add_argument("--space", help="search space YAML (default: dqnkit's for the config's policy type)")
    p.add_argument("--print-space", action="store_true", help="print the default search space for the config, exit")
    p.add_argument("--storage", help="Optuna storage URL shared by several processes (default: SQLite in the folder)")
    p.add_argument("--study", help="study name (default: the config's exp_name)")
    p.add_argument("--out", help="study folder (default: studies/<study>/)")
    p.add_argument("--max-env-steps", type=positive_int, help="each run's budget (default: the config's)")
    add_set_option(p, "fix a config key for every trial, as in dqn-train (repeatable)")
    p.add_argument("--objective", choices=("steps", "area"), default="steps", help="what a trial is judged on")
    p.add_argument("--pruner", choices=("median", "halving", "none"), default="median", help="Optuna's pruner")
    p.add_argument(
        "--recheck",
        type=positive_int,
        metavar="K",
        help="then train the K best trials again on fresh seeds and pick best_config.py by those (default: none)",
    )
    p.add_argument(
        "--recheck-seeds", type=positive_int, metavar="M", help="fresh seeds per rechecked trial (default: --seeds)"
    )
    return p


def main(argv: list[str] | None = None) -> None:
    stop_on_signals()  # before the heavy imports: a signal at any moment ends with its exit code
    args = build_parser().parse_args(argv)
    if args.jobs is not None and args.jobs > args.seeds:
        build_parser().error(f"--jobs {args.jobs} exceeds --seeds {args.seeds}: a process runs one trial at a time")
    if args.recheck_seeds is not None and args.recheck is None:
        build_parser().error("--recheck-seeds needs --recheck K: how many of the best trials to train again")

    def command() -> int:
        from dqnkit.tune.study import TuneOptions, prepare, tune

        options = TuneOptions(
            config=args.config,
            trials=args.trials,
            seeds=args.seeds,
            jobs=args.jobs,
            space=args.space,
            storage=args.storage,
            study=args.study,
            out=args.out,
            max_env_steps=args.max_env_steps,
            overrides=args.overrides,
            objective=args.objective,
            pruner=args.pruner,
            recheck=args.recheck or 0,
            recheck_seeds=args.recheck_seeds,
        )
        if args.print_space:
            print(prepare(options).space_file.read_text(), end="")
            return 0
        return tune(options)

    run_command("dqn-tune", command)


if __name__ == "__main__":
    main()
