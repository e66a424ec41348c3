"""The DQN family dqnkit trains: DI-engine's policies and models for DQN, C51, QR-DQN, IQN and Rainbow, chosen by
`create_config.policy.type`, each fed from dqnkit's replay buffer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from ding.model import C51DQN, DQN, IQN, QRDQN, RainbowDQN
from ding.policy import C51Policy, IQNPolicy, QRDQNPolicy, RainbowDQNPolicy
from ding.torch_utils import to_device
from ding.utils.data import default_collate, default_decollate

from dqnkit.dingext.policy import FastDQNPolicy
from dqnkit.dingext.replay import ReplayRow
from dqnkit.envs import takes_frames


class RowsAsTransitions:
    """Mixed in before a DI-engine policy that collates its batch itself: rows sampled from an ArrayReplayBuffer
    become the transition dicts DequeBuffer would have given it (the same tensors; tests compare the learning)."""

    def _forward_learn(self, data: list[Any]) -> dict[str, Any]:
        if data and isinstance(data[0], ReplayRow):
            data = [row.transition() for row in data]
        return super()._forward_learn(data)  # type: ignore[misc]


class C51(RowsAsTransitions, C51Policy):
    """DI-engine's C51Policy (categorical return distribution on a fixed support)."""


class QuantileRegression(RowsAsTransitions, QRDQNPolicy):
    """DI-engine's QRDQNPolicy (fixed quantile fractions, quantile Huber loss)."""


class ImplicitQuantiles(RowsAsTransitions, IQNPolicy):
    """DI-engine's IQNPolicy (quantile fractions sampled on every forward pass)."""


class Rainbow(RowsAsTransitions, RainbowDQNPolicy):
    """DI-engine's RainbowDQNPolicy (C51 with a dueling, noisy head; prioritized replay by default), exploring with
    its noisy layers as Rainbow does. DI-engine's collect step puts the network in eval mode right before drawing new
    noise, and in eval mode its NoiseLinearLayer computes with the mean weights alone: it explored by epsilon only.
    Evaluation and export stay noise-free (eval mode)."""

    def _forward_collect(self, data: dict[int, Any], eps: float) -> dict[int, Any]:
        data_id = list(data.keys())
        batch = default_collate(list(data.values()))
        if self._cuda:
            batch = to_device(batch, self._device)
        self._collect_model.train()  # the noisy layers add their noise only in train mode (no dropout or norms here)
        self._reset_noise(self._collect_model)
        with torch.no_grad():
            output = self._collect_model.forward(batch, eps=eps)
        if self._cuda:
            output = to_device(output, "cpu")
        return dict(zip(data_id, default_decollate(output), strict=True))


def _frames_to_unit_range(_encoder: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Pixel networks take frames as stored and exported, uint8 in 0..255, and scale them to [0, 1] themselves."""
    obs, *rest = args
    return (obs.to(torch.float32) / 255.0, *rest)


@dataclass(frozen=True)
class Algorithm:
    name: str
    policy: type
    model: type

    def new_model(self, model_cfg: Any) -> Any:
        """DI-engine's model for a `policy.model` section; for image stacks, one that scales uint8 frames."""
        model = self.model(**model_cfg)
        if takes_frames(model_cfg["obs_shape"]):
            model.encoder.register_forward_pre_hook(_frames_to_unit_range)
        return model

    def build(self, policy_cfg: Any, enable_field: list[str] | None = None) -> tuple[Any, Any]:
        """(model, policy) for a compiled `policy` section."""
        model = self.new_model(policy_cfg.model)
        return model, self.policy(policy_cfg, model=model, enable_field=enable_field)


ALGORITHMS = {
    a.name: a
    for a in (
        Algorithm("dqn", FastDQNPolicy, DQN),
        Algorithm("c51", C51, C51DQN),
        Algorithm("qrdqn", QuantileRegression, QRDQN),
        Algorithm("iqn", ImplicitQuantiles, IQN),
        Algorithm("rainbow", Rainbow, RainbowDQN),
    )
}
