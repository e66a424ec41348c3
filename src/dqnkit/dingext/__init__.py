"""DI-engine fixes and extensions: faster stand-ins that give DI-engine's own results, corrections where it is
wrong, and dqnkit's additions to its DQN (the replay buffer, the Munchausen target).

They reach into DI-engine 0.5.3's internals, so importing this package imports DI-engine (quietly, once) and
refuses any other version with one line instead of failing somewhere inside a run.
"""

from __future__ import annotations

from importlib import metadata

from dqnkit.errors import UserError
from dqnkit.quiet import import_ding_quietly

WRITTEN_FOR = "0.5.3"


def check_ding_version(installed: str | None) -> None:
    """A UserError unless `installed` (None: not installed) is the DI-engine version these extensions were
    written for."""
    if installed != WRITTEN_FOR:
        found = "DI-engine is not installed" if installed is None else f"DI-engine {installed} is installed"
        raise UserError(
            f"{found}, but dqnkit's DI-engine extensions were written for DI-engine {WRITTEN_FOR}: "
            f"install it with pip install --no-deps DI-engine=={WRITTEN_FOR}"
        )


def _installed_ding() -> str | None:
    try:
        return metadata.version("DI-engine")
    except metadata.PackageNotFoundError:
        return None


check_ding_version(_installed_ding())
import_ding_quietly()
