"""What every dqnkit command's parser shares: one-line usage errors with exit code 2, and argument types."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from dqnkit.errors import USER_ERROR_EXIT


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (no usage dump) pointing at --help."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(USER_ERROR_EXIT)


def make_parser(prog: str, description: str, epilog: str | None = None) -> Parser:
    return Parser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_set_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """--set KEY=VALUE, repeatable, into args.overrides: config keys as dqn-train and dqn-tune take them."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help_text)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def seed_list(text: str) -> list[int]:
    """--seeds: "0-7", "0,3,5" or both ("0-2,5"), as sorted distinct seeds."""
    seeds: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seeds like 0-7 or 0,3,5, got {text!r}") from None
        if first < 0 or last < first:
            raise argparse.ArgumentTypeError(f"expected seeds like 0-7 or 0,3,5 (from low to high, >= 0), got {part!r}")
        seeds.update(range(first, last + 1))
    return sorted(seeds)
