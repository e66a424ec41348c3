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
"""


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("dqn-plot", __doc__ or "", EPILOG)
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folders (each with metrics.csv)")
    p.add_argument("--out", type=Path, default=Path("curves.png"), help="PNG to write (default curves.png)")
    p.add_argument("--title", help="figure title")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    def command() -> int:
        from dqnkit.plotting import plot_runs
        from dqnkit.validate import writable_file

        writable_file(args.out, "--out", (".png",))
        print(plot_runs(args.runs, args.out, title=args.title))
        return 0

    run_command("dqn-plot", command)


if __name__ == "__main__":
    main()
