"""What every dqnkit command shares: one-line errors with exit code 2, and argument types."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

from dqnkit.errors import TrainingFailed, UserError, interrupting_signal

USER_ERROR_EXIT = 2


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


def run(prog: str, command: Callable[[], int]) -> NoReturn:
    """Run a command; a UserError becomes one line on stderr and exit code 2."""
    try:
        code = command()
    except UserError as e:
        message = " ".join(str(e).split())  # one line, whatever the message held
        print(f"{prog}: error: {message}", file=sys.stderr)
        sys.exit(USER_ERROR_EXIT)
    except TrainingFailed as e:
        print(f"{prog}: error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as e:  # dqn-train's SIGTERM handler raises one too
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(128 + interrupting_signal(e))
    sys.exit(code)
