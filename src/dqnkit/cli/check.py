"""dqn-check: look at an env before training on it: what dqnkit builds from it, and every problem, one line each."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dqnkit.cli.common import make_parser, non_negative_int, positive_int
from dqnkit.errors import USER_ERROR_EXIT, run_command

EPILOG = """\
examples:
  dqn-check CartPole-v1
  dqn-check configs/lunarlander.py           # the env a config trains on, with its n-step for the replay's size
  dqn-check corridor:Corridor --steps 5000   # your own env class (module:ClassName beside you or installed)

The env is built as dqn-train builds it; Gymnasium's own checker runs on it (its warnings are notes); random actions
step it, checking that observations stay in the observation space, rewards are finite, and a seeded reset gives
the same first observation twice. Exit code 2 when a problem was found.
"""


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("dqn-check", __doc__ or "", EPILOG)
    p.add_argument("target", metavar="ENV_OR_CONFIG", help="an env id (gym, Gymnasium, ALE, module:Class) or a config")
    p.add_argument("--steps", type=positive_int, default=1000, help="random env steps to take (default 1000)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the resets and actions (default 0)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    def command() -> int:
        from dqnkit.envcheck import check_env, env_of

        ref, nstep = env_of(args.target, Path.cwd())
        report = check_env(ref, steps=args.steps, seed=args.seed, nstep=nstep)
        print(f"dqn-check: {report.env_id}")
        for line in report.lines:
            print(f"  {line}")
        for note in report.notes:
            print(f"  note: {note}")
        for problem in report.problems:
            print(f"dqn-check: problem: {problem}", file=sys.stderr)
        if report.problems:
            return USER_ERROR_EXIT
        print(f"no problems found; train it with a config whose env.env_id is {report.env_id}")
        return 0

    run_command("dqn-check", command)


if __name__ == "__main__":
    main()
