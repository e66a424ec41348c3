"""Targeted fixes to DI-engine 0.5.3 pieces that are correct but slow, applied without changing their results
(and one that is wrong: the n-step enhancer)."""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable
from typing import Any


class _FastDictModule(types.ModuleType):
    """A stand-in for treetensor.torch or treetensor.numpy whose constructor takes dicts the fast way."""

    def __init__(self, real: types.ModuleType, constructor: str) -> None:
        super().__init__(real.__name__)
        self._real = real
        setattr(self, constructor, _fast_dicts(getattr(real, constructor)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _fast_dicts(construct: Callable[..., Any]) -> Callable[..., Any]:
    from treevalue import TreeValue
    from treevalue.tree.common import create_storage

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
    that fails after formatting every array with repr (~200 us per call, a third of a LunarLander run's time).
    Building the same TreeValue from a TreeStorage is ~20x faster; the resulting trees are identical."""
    import treetensor.numpy as tnp
    import treetensor.torch as ttorch
    from ding.envs.env_manager import base_env_manager, subprocess_env_manager
    from ding.framework.middleware.functional import collector

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


def _tree_tensor(fields: dict[str, Any]) -> Any:
    """A flat dict of tensors as a treetensor Tensor, built the fast way (from a TreeStorage)."""
    import treetensor.torch as ttorch
    from treevalue import TreeValue
    from treevalue.tree.common import create_storage

    return ttorch.Tensor(TreeValue(create_storage(fields)))


def _fast_flat_collate(real: Callable[..., Any]) -> Callable[..., Any]:
    import torch

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
        return _tree_tensor(stacked)

    return collate


def fast_batch_collation() -> None:
    """Every train iteration, DQNPolicy collates its batch of tree-tensor transitions with `ttorch.stack`, whose
    generic tree machinery cost ~20% of a LunarLander run. For flat trees of tensors (what StepCollector and the
    n-step enhancer store), stacking each field directly gives the same tensors (same values, dtypes and shapes)
    in about half the time; anything else still goes to DI-engine's collate."""
    from ding.utils.data import collate_fn

    if not getattr(collate_fn.ttorch_collate, "_dqnkit_fast", False):
        fast = _fast_flat_collate(collate_fn.ttorch_collate)
        fast._dqnkit_fast = True  # type: ignore[attr-defined]
        collate_fn.ttorch_collate = fast


def _unwrapped(model: Any) -> Any:
    """The torch module inside DI-engine's model wrappers (whose forward only calls it)."""
    from ding.model.wrapper.model_wrappers import IModelWrapper

    while isinstance(model, IModelWrapper):
        model = model._model
    return model


def _preprocess_gathered(fields: dict[str, Any], ignore_done: bool) -> dict[str, Any]:
    """A batch gathered by `gather_rows` as DI-engine's `default_preprocess_learn(..., use_nstep=True)` leaves a
    collated batch of the same transitions: float `done` (zeros with `ignore_done`), `weight` None unless stored,
    and n-step rewards transposed to (n, B)."""
    import torch

    data = dict(fields)
    data["done"] = torch.zeros_like(data["done"]).float() if ignore_done else data["done"].float()
    data.setdefault("weight", None)
    reward = data["reward"]
    if reward.dim() == 1:
        reward = reward.unsqueeze(1)
    if reward.dim() != 2:
        raise ValueError(f"n-step rewards of shape {tuple(data['reward'].shape)}: expected (batch, n)")
    data["reward"] = reward.transpose(0, 1).contiguous()
    return data


def fast_dqn_policy() -> type:
    """DI-engine's DQNPolicy with the same learn step minus its per-update bookkeeping (~10% of a LunarLander
    run): `_forward_learn` put both networks in train mode, built the full state dict for the target network and
    listed every TD error as a priority on every update. Here the modes are set only when an evaluation or
    collection changed them, the state dict is built only for the updates that copy it into the target (every
    `target_update_freq`; a soft target still gets it each time), and priorities only with prioritized replay.
    A batch sampled from dqnkit's ArrayReplayBuffer arrives as rows and is gathered field by field into the
    tensors DI-engine's collation and preprocessing would give, the networks are called without DI-engine's
    wrappers (whose forward only calls them and takes an argmax) and gradients are cleared by dropping them
    (what `zero_grad` does, without its per-call overhead).
    The math, its order and so the results are DQNPolicy's own (tests/test_ding_fixes.py compares parameters
    after many updates bit for bit). With `policy.learn.td_target` "munchausen" the learner regresses on the
    Munchausen target instead (dqnkit.munchausen), from one target-network forward over obs and next_obs."""
    import torch
    from ding.policy import DQNPolicy
    from ding.policy.common_utils import default_preprocess_learn
    from ding.rl_utils import q_nstep_td_data, q_nstep_td_error
    from ding.torch_utils import to_device
    from ding.utils.data import default_collate, default_decollate

    from dqnkit.munchausen import munchausen_nstep_target
    from dqnkit.replay import ReplayRow, gather_rows

    class FastDQNPolicy(DQNPolicy):
        def _init_learn(self) -> None:
            super()._init_learn()
            learn = self._cfg.learn  # compile_dqn_config gives every config config.LEARN_DEFAULTS' keys
            self._munchausen: tuple[float, float] | None = None
            if learn.td_target == "munchausen":
                self._munchausen = (float(learn.munchausen_tau), float(learn.munchausen_alpha))

        def _act(self, model: Any, data: dict[int, Any], **kwargs: Any) -> dict[int, Any]:
            """DQNPolicy's collect and eval forwards, which switch the network to eval mode on every call
            (walking all its modules); here only after training switched it."""
            data_id = list(data.keys())
            batch = default_collate(list(data.values()))
            if self._cuda:
                batch = to_device(batch, self._device)
            if model.training:
                model.eval()
            with torch.no_grad():
                output = model.forward(batch, **kwargs)
            if self._cuda:
                output = to_device(output, "cpu")
            return dict(zip(data_id, default_decollate(output), strict=True))

        def _forward_collect(self, data: dict[int, Any], eps: float) -> dict[int, Any]:
            return self._act(self._collect_model, data, eps=eps)

        def _forward_eval(self, data: dict[int, Any]) -> dict[int, Any]:
            return self._act(self._eval_model, data)

        def _forward_learn(self, batch: list[Any]) -> dict[str, Any]:
            if isinstance(batch[0], ReplayRow):  # sampled from an ArrayReplayBuffer: gathered, not collated
                data = _preprocess_gathered(gather_rows(batch), ignore_done=self._cfg.learn.ignore_done)
            else:
                data = default_preprocess_learn(
                    batch,
                    use_priority=self._priority,
                    use_priority_IS_weight=self._cfg.priority_IS_weight,
                    ignore_done=self._cfg.learn.ignore_done,
                    use_nstep=True,
                )
            if self._cuda:
                data = to_device(data, self._device)
            online, target = _unwrapped(self._learn_model), _unwrapped(self._target_model)
            for network in (online, target):
                if not network.training:
                    network.train()
            q_value = online(data["obs"])["logit"]
            if self._munchausen is None:
                with torch.no_grad():
                    target_q_value = target(data["next_obs"])["logit"]
                    target_q_action = online(data["next_obs"])["logit"].argmax(dim=-1)  # double DQN
                data_n = q_nstep_td_data(
                    q_value,
                    target_q_value,
                    data["action"],
                    target_q_action,
                    data["reward"],
                    data["done"],
                    data["weight"],
                )
                loss, td_error_per_sample = q_nstep_td_error(
                    data_n, self._gamma, nstep=self._nstep, value_gamma=data.get("value_gamma")
                )
            else:
                with torch.no_grad():
                    rows = data["obs"].shape[0]
                    both = target(torch.cat([data["obs"], data["next_obs"]]))["logit"]  # one forward for the two
                    target_q_value = both[rows:]
                    td_target = munchausen_nstep_target(
                        both[:rows],
                        target_q_value,
                        data["action"],
                        data["reward"],
                        data["done"],
                        self._gamma,
                        *self._munchausen,
                        value_gamma=data.get("value_gamma"),
                    )
                td_error_per_sample = (q_value.gather(1, data["action"].unsqueeze(1)).squeeze(1) - td_target) ** 2
                weight = data["weight"]
                loss = (td_error_per_sample if weight is None else td_error_per_sample * weight).mean()
            for group in self._optimizer.param_groups:
                for parameter in group["params"]:
                    parameter.grad = None
            loss.backward()
            if self._cfg.multi_gpu:
                self.sync_gradients(self._learn_model)
            self._optimizer.step()
            wrapper = self._target_model
            if wrapper._update_type == "assign" and (wrapper._update_count + 1) % wrapper._update_kwargs["freq"]:
                wrapper._update_count += 1  # what TargetNetworkWrapper.update does when no copy is due
            else:
                wrapper.update(self._learn_model.state_dict())
            output = {
                "cur_lr": self._optimizer.defaults["lr"],
                "total_loss": loss.item(),
                "q_value": q_value.mean().item(),
                "target_q_value": target_q_value.mean().item(),
            }
            if self._priority:
                output["priority"] = td_error_per_sample.abs().tolist()
            return output

    return FastDQNPolicy


def launched_once(manager_cls: type) -> type:
    """`manager_cls` (a DI-engine env manager) whose failures end the run. When an env worker dies while its env
    resets after an episode, SubprocessEnvManager's background reset thread fails, closes the manager and keeps
    the exception to itself; StepCollector and interaction_evaluator then find the manager closed and launch a
    fresh set of workers, so training went on as if nothing had happened (and dqn-train never stopped). Here a
    second launch raises instead, naming the failure the reset thread kept."""

    class LaunchedOnce(manager_cls):
        _launched = False
        _failure: BaseException | None = None

        def launch(self, reset_param: Any = None) -> None:
            if self._launched:
                reason = f" ({type(self._failure).__name__}: {self._failure})" if self._failure else ""
                raise RuntimeError(f"an env worker failed and DI-engine closed its env manager{reason}")
            self._launched = True
            super().launch(reset_param)

        def _reset(self, env_id: int) -> None:
            try:
                super()._reset(env_id)
            except BaseException as e:
                self._failure = e
                raise

    LaunchedOnce.__name__ = LaunchedOnce.__qualname__ = manager_cls.__name__
    return LaunchedOnce


def nstep_reward_enhancer(cfg: Any) -> Callable[[Any], None]:
    """A corrected stand-in for DI-engine's `nstep_reward_enhancer` middleware (same place in the pipeline, same
    fields out: `reward` of shape (nstep,), `value_gamma`).

    DI-engine 0.5.3's version treats `ctx.trajectories` as one time-ordered sequence, but StepCollector gives one
    chunk per env, concatenated: the last steps of each env's chunk sum rewards from the next env's chunk. It
    leaves `next_obs` and `done` at the first step, so DQN bootstraps gamma**n * Q(s[t+1]) after summing n rewards
    (r[t+1..] counted twice); it ends a window one step before a terminal transition, dropping the terminal
    reward; and it cuts windows at the end of each collection (n_sample 32 over 8 envs is 4 steps per env, so
    `nstep` 5 or 8 trains exactly as 4 would).

    Here each env's steps form one stream across collections: a window ends after n steps or at a terminal step
    (included); a step whose window needs the env's next collection waits for it. `next_obs`, `done` and
    `value_gamma` = gamma**(window length) come from the window's last step: the standard n-step target."""
    import torch

    nstep = int(cfg.policy.nstep)
    gamma = float(cfg.policy.discount_factor)
    waiting: dict[int, list[Any]] = {}  # env -> its latest steps, whose windows need the next collection

    def _enhance(ctx: Any) -> None:
        ready: list[Any] = []
        end_idx: list[int] = []
        start = 0
        for env, end in enumerate(ctx.trajectory_end_idx):
            steps = waiting.pop(env, []) + ctx.trajectories[start : end + 1]
            start = end + 1
            rewards = [t.reward for t in steps]
            next_obs = [t.next_obs for t in steps]
            dones = [t.done for t in steps]
            for i in range(len(steps)):
                last = i
                while last - i + 1 < nstep and not bool(dones[last]) and last + 1 < len(steps):
                    last += 1
                window = last - i + 1
                if window < nstep and not bool(dones[last]):
                    waiting[env] = steps[i:]
                    break
                step = steps[i]
                step.reward = torch.cat(rewards[i : last + 1] + [torch.zeros_like(rewards[i])] * (nstep - window))
                step.value_gamma = torch.tensor([gamma**window], dtype=torch.float32)
                step.next_obs = next_obs[last]
                step.done = dones[last]
                ready.append(step)
            end_idx.append(len(ready) - 1)
        ctx.trajectories, ctx.trajectory_end_idx = ready, end_idx

    return _enhance
