"""Keep DI-engine's, gym's and treevalue's import and runtime noise out of the user's terminal."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import warnings
from collections.abc import Iterator

_NOISY_LOGGERS = ("ditk", "ding", "root")
_DIAL_LOGGER = "pynng.nng"  # logs a traceback at ERROR whenever a node dials a peer that is not listening yet


def silence_warnings() -> None:
    for category in (DeprecationWarning, FutureWarning, UserWarning, RuntimeWarning):
        warnings.filterwarnings("ignore", category=category)
    # Subprocess env workers inherit the filter through the environment.
    os.environ.setdefault("PYTHONWARNINGS", "ignore")


@contextlib.contextmanager
def quiet_output() -> Iterator[None]:
    """Send fd 1 and 2 to /dev/null (gym prints its banner straight to stderr); restore them on exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def import_ding_quietly() -> None:
    """Import the heavy DI-engine modules once, with their banners and warnings suppressed."""
    silence_warnings()
    if "ding.framework.middleware" not in sys.modules:
        # The import creates hundreds of thousands of objects that live until exit: with the collector on, it rescans
        # them again and again during the import, and every full collection later would too (benchmarks/NOTES.md).
        collecting = gc.isenabled()
        gc.disable()
        try:
            with quiet_output():
                import ding.framework.middleware  # noqa: F401
                import gym  # noqa: F401
                import gymnasium  # noqa: F401
        finally:
            if collecting:  # a caller that had switched collection off keeps it off
                gc.enable()
        gc.freeze()
    mute_ding_logging()


def mute_ding_logging() -> None:
    # ditk logs INFO tables for every evaluation; dqnkit shows its own progress line instead.
    logging.getLogger(_DIAL_LOGGER).setLevel(logging.CRITICAL)
    for name in _NOISY_LOGGERS:
        _mute(logging.getLogger(name))
    try:
        from ditk import logging as ditk_logging

        _mute(ditk_logging.getLogger())
    except ImportError:
        pass


class _RetryNoise(logging.Filter):
    """DI-engine's env managers log "Env 0 step has exceeded max retries(1)" before raising: dqnkit reports the
    env's failure itself, once, with the env's own words."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "has exceeded max retries" not in str(record.msg)


_RETRY_NOISE = _RetryNoise()


def _mute(logger: logging.Logger) -> None:
    # Levels on the handlers too: DI-engine's Parallel runner sets the root logger back to INFO in every node.
    logger.setLevel(logging.ERROR)
    logger.addFilter(_RETRY_NOISE)
    for handler in logger.handlers:
        handler.setLevel(logging.ERROR)
        handler.addFilter(_RETRY_NOISE)
