"""Process-wide state a run changes and gives back as it found it (signal handlers, denormal flushing), and the
shutdown of DI-engine's env workers."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from dqnkit.signals import STOP_SIGNALS, signal_handlers


def late_signals_ignored() -> Any:
    """While the final checkpoint is written and workers are closed: a late Ctrl-C must not cut them short."""
    return signal_handlers({s: signal.SIG_IGN for s in (*STOP_SIGNALS, signal.SIGUSR1)})


def worker_signals() -> Any:
    """Env worker processes forked in here ignore Ctrl-C (which a terminal sends to the whole process group): the
    trainer alone decides how to stop and closes them after its final checkpoint. SIGTERM keeps its default, so
    `terminate()` still ends a worker; a worker whose trainer died exits when its pipe closes."""
    return signal_handlers({signal.SIGINT: signal.SIG_IGN, signal.SIGTERM: signal.SIG_DFL})


@contextmanager
def denormals_flushed() -> Iterator[None]:
    """Denormal floats flushed to zero in this thread for the duration, the previous setting restored afterwards.
    Adam's first moment of a dead ReLU unit's weights decays into the denormal range, where some CPUs take a
    microcode assist per operation; flushed, such values become the zeros they are decaying to, with the same
    weights bit for bit (benchmarks/NOTES.md)."""
    # torch has no getter: a float64 denormal survives a tensor's creation only while flushing is off.
    was_flushing = bool(torch.tensor([1e-323], dtype=torch.float64).item() == 0.0)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was_flushing)


def close_env(manager: Any, name: str) -> None:
    """Close a DI-engine env manager and make sure none of its worker processes outlives it."""
    try:
        manager.close()
    except (OSError, EOFError) as e:
        print(f"dqnkit: warning: {name} env workers did not close cleanly ({type(e).__name__})", file=sys.stderr)
    # SubprocessEnvManagerV2.close() returns early once the manager marked itself closed after a worker failure,
    # and stops at a dead worker's broken pipe; either way the other workers are left alive and would block
    # interpreter exit (multiprocessing joins its children).
    for process in getattr(manager, "_subprocesses", {}).values():
        if process.is_alive():
            process.terminate()
            process.join(timeout=2)
        if process.is_alive():
            process.kill()
            process.join(timeout=2)
