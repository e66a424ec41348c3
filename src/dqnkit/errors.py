"""dqnkit's exception types: what the CLI turns into one line and an exit code."""

import signal


class UserError(Exception):
    """A mistake the user can fix: the CLI prints its message on one line and exits with code 2."""


class TrainingFailed(Exception):
    """Training stopped on a failure that is not the user's input (e.g. an env worker died); the CLI prints one
    line and exits with code 1. The run folder already holds final.pth.tar and summary.json when it is raised."""


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
