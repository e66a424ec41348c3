"""dqnkit's exception types, and how a command turns them into one line and an exit code."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import NoReturn

USER_ERROR_EXIT = 2
FAILURE_EXIT = 1


class UserError(Exception):
    """A mistake the user can fix: the CLI prints its message on one line and exits with code 2."""


class TrainingFailed(Exception):
    """Training stopped on a failure that is not the user's input (e.g. an env worker died); the CLI prints one
    line and exits with code 1. The run folder already holds final.pth.tar and summary.json when it is raised.
    `details`: lines printed after it as they are (a user's env's own frames)."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = list(details or [])


class CheckFailed(Exception):
    """A file dqnkit made failed the check that decides whether it is written (an export's parity, a reduced-precision
    model's behaviour): nothing was written; the CLI prints one line and exits with code 1."""


class Interrupted(KeyboardInterrupt):
    """Raised from dqn-train's SIGINT/SIGTERM handler so that training unwinds through the normal stop path. A
    KeyboardInterrupt, as Ctrl-C's own exception is: asyncio (DI-engine's distributed nodes wait on its loop) and
    `except Exception` clauses let it through instead of logging or swallowing it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def interrupting_signal(interrupt: KeyboardInterrupt) -> int:
    """The signal behind an interrupt: Interrupted carries its own; Python raises a plain one for SIGINT."""
    return interrupt.signum if isinstance(interrupt, Interrupted) else int(signal.SIGINT)


def run_command(prog: str, command: Callable[[], int]) -> NoReturn:
    """Run a command and exit with its code; a UserError becomes one line on stderr and exit code 2, a
    TrainingFailed or CheckFailed one line and exit code 1, an interrupt 128 + the signal's number."""
    try:
        code = command()
    except UserError as e:
        print(f"{prog}: error: {' '.join(str(e).split())}", file=sys.stderr)  # one line, whatever the message held
        sys.exit(USER_ERROR_EXIT)
    except (TrainingFailed, CheckFailed) as e:
        print(f"{prog}: error: {' '.join(str(e).split())}", file=sys.stderr)
        for line in getattr(e, "details", []):
            print(line, file=sys.stderr)
        sys.exit(FAILURE_EXIT)
    except KeyboardInterrupt as e:  # dqn-train's SIGTERM handler raises one too
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(128 + interrupting_signal(e))
    sys.exit(code)
