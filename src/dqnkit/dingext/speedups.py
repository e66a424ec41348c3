"""Speed-ups of DI-engine 0.5.3 pieces that are correct but slow, patched in without changing their results
(what each saved: benchmarks/NOTES.md)."""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable
from typing import Any

import torch
import treetensor.numpy as tnp
import treetensor.torch as ttorch
from ding.envs.env_manager import base_env_manager, subprocess_env_manager
from ding.framework.middleware.functional import collector
from ding.utils.data import collate_fn
from treevalue import TreeValue
from treevalue.tree.common import create_storage


class _FastDictModule(types.ModuleType):
    """A stand-in for treetensor.torch or treetensor.numpy whose constructor takes dicts the fast way."""

    def __init__(self, real: types.ModuleType, constructor: str) -> None:
        super().__init__(real.__name__)
        self._real = real
        setattr(self, constructor, _fast_dicts(getattr(real, constructor)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _fast_dicts(construct: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(data: Any, *args: Any, **kwargs: Any) -> Any:
        if type(data) is dict:
            # Non-string keys: leave the dict to treetensor, which handles (or rejects) it as before.
            with contextlib.suppress(TypeError):
                data = TreeValue(create_storage(data))
        return construct(data, *args, **kwargs)

    return wrapper


def fast_tree_construction() -> None:
    """Per env step, DI-engine wraps dicts into tree tensors: `ttorch.as_tensor(transition)` in StepCollector and
    `tnp.array({...})` for every timestep in the V2 env managers. Given a plain dict, treevalue first tries a path
    that fails after formatting every array with repr; building the same TreeValue from a TreeStorage skips it and
    gives identical trees."""
    for module, name, real, constructor in (
        (collector, "ttorch", ttorch, "as_tensor"),
        (base_env_manager, "tnp", tnp, "array"),
        (subprocess_env_manager, "tnp", tnp, "array"),
    ):
        if hasattr(module, name) and not isinstance(getattr(module, name), _FastDictModule):
            setattr(module, name, _FastDictModule(real, constructor))


def squeeze_single_column(batch: Any) -> Any:
    """A stacked (B, 1) field as DI-engine's collate with `cat_1dim` leaves it: (B,). Other shapes unchanged."""
    return batch.squeeze(-1) if batch.dim() == 2 and batch.shape[1] == 1 else batch


def tree_tensor(fields: dict[str, Any]) -> Any:
    """A flat dict of tensors as a treetensor Tensor, built the fast way (from a TreeStorage)."""
    return ttorch.Tensor(TreeValue(create_storage(fields)))


def _fast_flat_collate(real: Callable[..., Any]) -> Callable[..., Any]:
    def collate(x: Any, json: bool = False, cat_1dim: bool = True) -> Any:
        try:
            stores = [t._detach().detach() for t in x]
            first = stores[0]
            if not all(isinstance(v, torch.Tensor) for v in first.values()):
                raise TypeError("nested tree")
            stacked = {}
            for key in first:
                value = torch.stack([s[key] for s in stores])
                stacked[key] = squeeze_single_column(value) if cat_1dim else value
            if any(len(s) != len(first) for s in stores):
                raise KeyError("trees with different fields")
        except (AttributeError, IndexError, KeyError, TypeError, RuntimeError):
            return real(x, json=json, cat_1dim=cat_1dim)
        if json:  # what DQNPolicy asks for: a plain dict of tensors, as tree.json() gives
            return stacked
        return tree_tensor(stacked)

    return collate


def fast_batch_collation() -> None:
    """Every train iteration, DQNPolicy collates its batch of tree-tensor transitions with `ttorch.stack` and its
    generic tree machinery. For flat trees of tensors (what StepCollector and the n-step enhancer store), stacking
    each field directly gives the same tensors (same values, dtypes and shapes) faster; anything else still goes to
    DI-engine's collate."""
    if not getattr(collate_fn.ttorch_collate, "_dqnkit_fast", False):
        fast = _fast_flat_collate(collate_fn.ttorch_collate)
        fast._dqnkit_fast = True  # type: ignore[attr-defined]
        fast.__wrapped__ = collate_fn.ttorch_collate  # type: ignore[attr-defined]  # DI-engine's own, for comparison
        collate_fn.ttorch_collate = fast
