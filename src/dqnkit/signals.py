"""How dqnkit meets SIGINT and SIGTERM: one handler class for commands and runs, standard library only (a command
installs it before its heavy imports).

A stop signal raises Interrupted, so that a run unwinds through its normal stop path (final checkpoint, summary),
and is remembered: DI-engine's in-process env manager catches whatever an env step or reset raises (KeyboardInterrupt
included) and raises a RuntimeError of its own instead, which must still end the run as interrupted. Only the
first signal raises: the stop it starts must not be cut short by a second Ctrl-C, or by the SIGINT a supervisor
forwards after a terminal's. While deferring, a signal is only remembered: from the moment a run folder exists until
the run can save a final checkpoint, and while a child process is being started.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dqnkit.errors import Interrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
RESEND_S = 0.05  # how long after a swallowed interrupt its signal comes again
_installed: list[InterruptSignals] = []  # innermost last: what `held()` applies to
_hooks: list[Any] = []  # sys.unraisablehook as it was before the first handler went in


@contextmanager
def signal_handlers(handlers: dict[signal.Signals, Any]) -> Iterator[None]:
    """Install these handlers for the duration of the block, then restore the previous ones."""
    previous = {s: signal.signal(s, h) for s, h in handlers.items()}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class InterruptSignals:
    """SIGINT and SIGTERM handled as the module says, for the duration of a `with` block."""

    def __init__(self, deferring: bool = False) -> None:
        self.signum: int | None = None
        self._deferring = deferring
        self._handlers = signal_handlers({s: self._handle for s in STOP_SIGNALS})

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        if not self._deferring:
            raise Interrupted(signum)

    def raise_from_now_on(self) -> int | None:
        """The end of deferring; returns the signal that came meanwhile, if one did."""
        self._deferring = False
        return self.signum

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """A signal during the block raises when the block ends (unless deferring already)."""
        was = self._deferring
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = was
        if not was and self.signum is not None:
            raise Interrupted(self.signum)

    def __enter__(self) -> InterruptSignals:
        if not _installed:
            _hooks[:] = [sys.unraisablehook]
            sys.unraisablehook = _raise_swallowed_again
        self._handlers.__enter__()
        _installed.append(self)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        _installed.remove(self)
        self._handlers.__exit__(*exc_info)
        if not _installed:
            sys.unraisablehook = _hooks.pop()
        if self.signum is not None and _installed and _installed[-1].signum is None:
            _installed[-1].signum = self.signum  # the handler back in place is stopping too: the next one is late


def _raise_swallowed_again(unraisable: Any) -> None:
    """Python swallows what a weakref callback or a __del__ raises ("Exception ignored in ..."): an Interrupted that
    a signal handler raised there (during a garbage collection, say) would be lost, and the stop it starts would
    never happen. The signal is raised again instead, to land wherever the program goes on."""
    error = unraisable.exc_value
    if isinstance(error, Interrupted) and _installed:
        _installed[-1].signum = None  # the handler in place raised it: let it raise once more
        # From another thread, a moment later: raised here, in the hook, it would be swallowed the same way.
        resend = threading.Timer(RESEND_S, os.kill, args=(os.getpid(), error.signum))
        resend.daemon = True
        resend.start()
        return
    _hooks[0](unraisable)


def stop_on_signals() -> None:
    """A command's first step: stop signals raise Interrupted from here on, so that one during the imports and
    planning that come before a run's own handling ends the command with 128 + its number and no traceback
    (SIGTERM's default would kill it silently, Python's SIGINT would print one). Commands only, for the rest of
    the process: a library caller keeps its own handlers."""
    InterruptSignals().__enter__()


@contextmanager
def held() -> Iterator[None]:
    """A stop signal during the block raises when it ends (a process started inside is then known to the code
    that will stop it); without dqnkit's handlers installed, nothing changes."""
    if not _installed:
        yield
        return
    with _installed[-1].deferred():
        yield
