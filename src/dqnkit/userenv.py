"""A user's own environment, named `package.module:ClassName` (a Gymnasium or gym env class) or, in Gymnasium's
form, `module:EnvName-v0` (a module that registers the id when imported): found without any registration."""

from __future__ import annotations

import difflib
import importlib
import inspect
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from dqnkit.errors import UserError
from dqnkit.quiet import quiet_output


def is_user_env(env_id: str) -> bool:
    return ":" in env_id


def import_root(env_id: str, search: list[Path]) -> str | None:
    """The first of `search` (e.g. the current folder, the config's folder) that holds the id's top-level module or
    package, as an absolute path to record with the run; None when it is left to the installed packages."""
    top = env_id.partition(":")[0].split(".")[0]
    for folder in search:
        if (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file():
            return str(folder.resolve())
    return None


def _module(name: str, root: str | None, env_id: str) -> Any:
    if root is not None and root not in sys.path:
        sys.path.insert(0, root)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        where = f" in {root} or" if root else ""
        raise UserError(
            f"env {env_id!r}: no module {e.name!r}{where} among the installed packages (put {name.split('.')[0]}.py "
            "in the current folder or the config's folder, or install it)"
        ) from e
    except Exception as e:
        raise UserError(f"env {env_id!r}: importing {name} failed: {type(e).__name__}: {e}") from e


def _gym() -> Any:
    with quiet_output():  # gym prints an "unmaintained" banner on import
        import gym
    return gym


def _env_classes(module: Any) -> list[str]:
    return [n for n, v in vars(module).items() if inspect.isclass(v) and hasattr(v, "step") and hasattr(v, "reset")]


def constructor(env_id: str, root: str | None) -> Callable[..., Any]:
    """What builds the env, called with env.kwargs: the class, or gym/Gymnasium's make of the id the module
    registered."""
    module_name, _, name = env_id.partition(":")
    if not module_name or not name:
        raise UserError(f"env {env_id!r}: expected package.module:ClassName or module:EnvName-v0")
    module = _module(module_name, root, env_id)
    target = getattr(module, name, None)
    if inspect.isclass(target):
        return target
    import gymnasium

    if name in gymnasium.envs.registry:
        return partial(gymnasium.make, name)
    gym = _gym()

    if name in gym.envs.registry:
        return partial(gym.make, name, new_step_api=True, disable_env_checker=True)
    classes = _env_classes(module)
    close = difflib.get_close_matches(name, classes, n=1)
    listed = f" (env classes there: {', '.join(classes) or 'none'})"
    hint = f"; did you mean {module_name}:{close[0]}?" if close else listed
    raise UserError(f"env {env_id!r}: {module_name} defines no env class or registered id {name!r}{hint}")


def build(env_id: str, root: str | None, kwargs: dict[str, Any], for_ding: bool) -> Any:
    """The user's env. For DI-engine's wrapper as it is (it speaks gym 0.25's and Gymnasium's APIs); otherwise with
    the step API of Gymnasium (terminated and truncated), whichever library it is for."""
    try:
        env = constructor(env_id, root)(**kwargs)
    except UserError:
        raise
    except TypeError as e:
        raise UserError(f"env {env_id!r} does not take env.kwargs {sorted(kwargs)}: {e}") from e
    gym = _gym()

    if not for_ding and isinstance(env, gym.Env) and not getattr(env, "new_step_api", False):
        from gym.wrappers import StepAPICompatibility

        env = StepAPICompatibility(env, new_step_api=True)
    return env
