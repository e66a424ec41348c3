"""DI-engine's env managers, made to end the run when an env worker fails.

When an env worker dies while its env resets after an episode, SubprocessEnvManager's background reset thread
fails, closes the manager and keeps the exception to itself; StepCollector and interaction_evaluator then find the
manager closed and launch a fresh set of workers, so training went on as if nothing had happened (and dqn-train
never stopped). Here a second launch raises instead, naming the failure the reset thread kept.
"""

from __future__ import annotations

from typing import Any

from ding.envs import BaseEnvManagerV2, SubprocessEnvManagerV2


class LaunchedOnce:
    """Mixed in before a DI-engine env manager: its first launch is its only one."""

    _launched = False
    _failure: BaseException | None = None

    def launch(self, reset_param: Any = None) -> None:
        if self._launched:
            reason = f" ({type(self._failure).__name__}: {self._failure})" if self._failure else ""
            raise RuntimeError(f"an env worker failed and DI-engine closed its env manager{reason}")
        self._launched = True
        super().launch(reset_param)  # type: ignore[misc]

    def _reset(self, env_id: int) -> None:
        try:
            super()._reset(env_id)  # type: ignore[misc]
        except BaseException as e:
            self._failure = e
            raise


class InProcessEnvManager(LaunchedOnce, BaseEnvManagerV2):
    """BaseEnvManagerV2 (every env in this process), launched once."""


class SubprocessEnvManager(LaunchedOnce, SubprocessEnvManagerV2):
    """SubprocessEnvManagerV2 (one process per env), launched once."""


MANAGERS = {"base": InProcessEnvManager, "subprocess": SubprocessEnvManager}
