"""FastDQNPolicy: DI-engine's DQNPolicy with the same learn step minus its per-update bookkeeping.

`DQNPolicy._forward_learn` puts both networks in train mode, builds the full state dict for the target network and
lists every TD error as a priority on every update. Here the modes are set only when an evaluation or collection
changed them, the state dict is built only for the updates that copy it into the target (every
`target_update_freq`; a soft target still gets it each time), and priorities only with prioritized replay. A batch
sampled from dqnkit's ArrayReplayBuffer arrives as rows and is gathered field by field into the tensors DI-engine's
collation and preprocessing would give; the networks are called without DI-engine's wrappers (whose forward only
calls them and takes an argmax) and gradients are cleared by dropping them (what `zero_grad` does).
The math, its order and so the results are DQNPolicy's own: tests compare parameters after many updates bit for
bit. With `policy.learn.td_target` "munchausen" the learner regresses on the Munchausen target instead
(dingext.munchausen). Why each shortcut was worth it: benchmarks/NOTES.md.
"""

from __future__ import annotations

from typing import Any

import torch
from ding.model.wrapper.model_wrappers import IModelWrapper
from ding.policy import DQNPolicy
from ding.policy.common_utils import default_preprocess_learn
from ding.rl_utils import q_nstep_td_data, q_nstep_td_error
from ding.torch_utils import to_device
from ding.utils.data import default_collate, default_decollate

from dqnkit.dingext.munchausen import munchausen_nstep_target
from dqnkit.dingext.replay import ReplayRow, gather_rows


def unwrapped(model: Any) -> Any:
    """The torch module inside DI-engine's model wrappers (whose forward only calls it)."""
    while isinstance(model, IModelWrapper):
        model = model._model
    return model


def preprocess_gathered(fields: dict[str, Any], ignore_done: bool) -> dict[str, Any]:
    """A batch gathered by `gather_rows` as DI-engine's `default_preprocess_learn(..., use_nstep=True)` leaves a
    collated batch of the same transitions: float `done` (zeros with `ignore_done`), `weight` None unless stored,
    and n-step rewards transposed to (n, B)."""
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


class FastDQNPolicy(DQNPolicy):
    def _init_learn(self) -> None:
        super()._init_learn()
        learn = self._cfg.learn  # compile_dqn_config gives every config config.LEARN_DEFAULTS' keys
        self._munchausen: tuple[float, float] | None = None
        if learn.td_target == "munchausen":
            self._munchausen = (float(learn.munchausen_tau), float(learn.munchausen_alpha))

    def _act(self, model: Any, data: dict[int, Any], **kwargs: Any) -> dict[int, Any]:
        """DQNPolicy's collect and eval forwards, which switch the network to eval mode on every call (walking
        all its modules); here only after training switched it."""
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

    def _learn_batch(self, batch: list[Any]) -> dict[str, Any]:
        if isinstance(batch[0], ReplayRow):  # sampled from an ArrayReplayBuffer: gathered, not collated
            data = preprocess_gathered(gather_rows(batch), ignore_done=self._cfg.learn.ignore_done)
        else:
            data = default_preprocess_learn(
                batch,
                use_priority=self._priority,
                use_priority_IS_weight=self._cfg.priority_IS_weight,
                ignore_done=self._cfg.learn.ignore_done,
                use_nstep=True,
            )
        return to_device(data, self._device) if self._cuda else data

    def _double_dqn_loss(
        self, online: Any, target: Any, q_value: torch.Tensor, data: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """DQNPolicy's n-step double DQN loss: (loss, per-sample TD error, target Q)."""
        with torch.no_grad():
            target_q_value = target(data["next_obs"])["logit"]
            target_q_action = online(data["next_obs"])["logit"].argmax(dim=-1)
        data_n = q_nstep_td_data(
            q_value, target_q_value, data["action"], target_q_action, data["reward"], data["done"], data["weight"]
        )
        loss, td_error_per_sample = q_nstep_td_error(
            data_n, self._gamma, nstep=self._nstep, value_gamma=data.get("value_gamma")
        )
        return loss, td_error_per_sample, target_q_value

    def _munchausen_loss(
        self, target: Any, q_value: torch.Tensor, data: dict[str, Any], tau: float, alpha: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The squared error to the n-step Munchausen target: (loss, per-sample error, target Q)."""
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
                tau,
                alpha,
                value_gamma=data.get("value_gamma"),
            )
        td_error_per_sample = (q_value.gather(1, data["action"].unsqueeze(1)).squeeze(1) - td_target) ** 2
        weight = data["weight"]
        loss = (td_error_per_sample if weight is None else td_error_per_sample * weight).mean()
        return loss, td_error_per_sample, target_q_value

    def _update_target(self) -> None:
        wrapper = self._target_model
        if wrapper._update_type == "assign" and (wrapper._update_count + 1) % wrapper._update_kwargs["freq"]:
            wrapper._update_count += 1  # what TargetNetworkWrapper.update does when no copy is due
        else:
            wrapper.update(self._learn_model.state_dict())

    def _forward_learn(self, batch: list[Any]) -> dict[str, Any]:
        data = self._learn_batch(batch)
        online, target = unwrapped(self._learn_model), unwrapped(self._target_model)
        for network in (online, target):
            if not network.training:
                network.train()
        q_value = online(data["obs"])["logit"]
        if self._munchausen is None:
            loss, td_error_per_sample, target_q_value = self._double_dqn_loss(online, target, q_value, data)
        else:
            loss, td_error_per_sample, target_q_value = self._munchausen_loss(target, q_value, data, *self._munchausen)
        for group in self._optimizer.param_groups:
            for parameter in group["params"]:
                parameter.grad = None
        loss.backward()
        if self._cfg.multi_gpu:
            self.sync_gradients(self._learn_model)
        self._optimizer.step()
        self._update_target()
        output = {
            "cur_lr": self._optimizer.defaults["lr"],
            "total_loss": loss.item(),
            "q_value": q_value.mean().item(),
            "target_q_value": target_q_value.mean().item(),
        }
        if self._priority:
            output["priority"] = td_error_per_sample.abs().tolist()
        return output
