"""dqn-plot: learning curves of one or more runs (eval return against env steps and wall time) as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from dqnkit.cli.common import make_parser
from dqnkit.errors import run_command

EPILOG = """\
examples:
  dqn-plot runs/lunarlander_dqn_seed0
  dqn-plot runs/lunarlander_dqn_seed* --out seeds.png --title "LunarLander, 3 seeds"
  dqn-plot runs/lunarlander_dqn_seed* runs/lunarlander_qrdqn_seed* --aggregate --out dqn-vs-qrdqn.png

--aggregate groups the runs by folder name without its _seed<S> suffix and draws, per group, the interquartile
mean and the median of the evaluation return over the runs against env steps, with 95% bootstrap confidence
intervals; it prints a table of the final scores.
"""


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("dqn-plot", __doc__ or "", EPILOG)
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folders (each with metrics.csv)")
    p.add_argument("--out", type=Path, default=Path("curves.png"), help="PNG to write (default curves.png)")
    p.add_argument("--title", help="figure title")
    p.add_argument(
        "--aggregate",
        action="store_true",
        help="IQM and median over the seeds of each configuration, with 95%% bootstrap intervals",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    def command() -> int:
        from dqnkit.plotting import plot_runs
        from dqnkit.validate import writable_file

        writable_file(args.out, "--out", (".png",))
        if args.aggregate:
            from dqnkit.aggregate import plot_aggregate

            print(plot_aggregate(args.runs, args.out, title=args.title))
            print(args.out)
            return 0
        print(plot_runs(args.runs, args.out, title=args.title))
        return 0

    run_command("dqn-plot", command)


if __name__ == "__main__":
    main()
