"""A user's env that raises in `step` or `reset`, reported as one line (which env, where, what) and the env's own
frames, however DI-engine's env managers pass the exception on: the in-process manager retries and raises a
RuntimeError of its own with the message, a subprocess worker sends back `type(e)(traceback + repr(e))`."""

from __future__ import annotations

import ast
import traceback
from pathlib import Path
from typing import Any

WORKER_MARK = "Env Process Exception:"  # how DI-engine's subprocess workers prefix an env's exception
_last: list[EnvFailed] = []  # the failure this process raised last (the in-process manager drops the chain)
_LIBRARY_PARTS = ("site-packages", "dist-packages", str(Path(__file__).resolve().parent))


class EnvFailed(RuntimeError):
    """The first line says which env raised what and where; the lines after it are the env's own frames."""

    def __init__(self, message: str) -> None:
        super().__init__(_unwrapped(message))

    @property
    def line(self) -> str:
        return str(self).split("\n", 1)[0]

    @property
    def frames(self) -> list[str]:
        return [line for line in str(self).split("\n")[1:] if line.strip()]


def _unwrapped(message: str) -> str:
    """The message as the env guard wrote it, also after a subprocess worker wrapped it."""
    if WORKER_MARK not in message:
        return message
    tail = message.rsplit(f"{EnvFailed.__name__}(", 1)[-1].rstrip()
    try:
        original = ast.literal_eval(tail[:-1])  # repr(e)'s argument, without its closing parenthesis
    except (ValueError, SyntaxError):
        return message.strip()
    return original if isinstance(original, str) else message.strip()


def env_failure(error: BaseException) -> EnvFailed | None:
    """The env failure behind `error`: in its chain, or the one this process raised last if `error` quotes it."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, EnvFailed):
            return seen
        seen = seen.__cause__ or seen.__context__
    if _last and _last[-1].line in str(error):
        return _last[-1]
    return None


def failure_frames(error: BaseException) -> list[str]:
    """The env's own frames behind `error`, or what a TrainingFailed already carries (none otherwise)."""
    env = env_failure(error)
    return env.frames if env is not None else list(getattr(error, "details", []))


def _own_frames(error: BaseException) -> str:
    """The frames of the traceback outside installed packages, the standard library and dqnkit: the user's code."""
    frames = traceback.extract_tb(error.__traceback__)
    stdlib = str(Path(traceback.__file__).resolve().parent)
    own = [f for f in frames if not f.filename.startswith(stdlib) and not any(p in f.filename for p in _LIBRARY_PARTS)]
    return "".join(traceback.format_list(own or frames[-1:])).rstrip()


def guard(env: Any, env_id: str) -> Any:
    """`env` with its step and reset raising EnvFailed instead of whatever they raise (the instance's own methods
    are replaced, so that DI-engine still sees the gym or Gymnasium env it is)."""
    step, reset = env.step, env.reset
    episode_step = [0]

    def failed(error: Exception, where: str) -> EnvFailed:
        text = " ".join(str(error).split())
        failure = EnvFailed(f"{env_id} raised {type(error).__name__}: {text} in {where}\n{_own_frames(error)}")
        _last[:] = [failure]
        return failure

    def guarded_step(action: Any) -> Any:
        episode_step[0] += 1
        try:
            return step(action)
        except Exception as e:
            raise failed(e, f"step() at step {episode_step[0]} of an episode") from e

    def guarded_reset(*args: Any, **kwargs: Any) -> Any:
        episode_step[0] = 0
        try:
            return reset(*args, **kwargs)
        except Exception as e:
            raise failed(e, "reset()") from e

    env.step, env.reset = guarded_step, guarded_reset
    return env
