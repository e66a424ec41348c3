"""A checkpoint's Q-network as the DI-engine model its policy type trains (`ding.model.DQN`, `C51DQN`, `QRDQN`,
`IQN`, `RainbowDQN`), rebuilt from the architecture the checkpoint stores, and the deterministic expected Q-values
the greedy policy acts on, which exports and evaluation use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dqnkit import checkpoint as ckpt
from dqnkit.config import compile_dqn_config, load_config_file, to_plain
from dqnkit.errors import UserError
from dqnkit.runfolder import resolve_checkpoint

IQN_FRACTIONS = 32  # evenly spaced quantile fractions for IQN's expected Q, unless the user picks another count


class ExpectedQ(torch.nn.Module):
    """obs -> the network's `logit`: DQN's Q-values; for C51 and Rainbow the mean over the support, for QR-DQN over
    the quantiles (Rainbow's noisy layers use their mean weights in eval mode)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)["logit"]


def iqn_fractions(net: Any, count: int) -> torch.Tensor:
    """`count` evenly spaced fractions (k + 0.5) / count, through the head's distortion (beta) function, as a column:
    where DI-engine's IQN draws fresh random fractions on every forward pass."""
    return net.head.beta_function((torch.arange(count, dtype=torch.float32) + 0.5) / count).reshape(-1, 1)


class IQNExpectedQ(torch.nn.Module):
    """obs -> IQN's expected Q-values at fixed fractions: the head of DI-engine's IQN with its random draws replaced,
    computed by broadcasting instead of repeating the batch (the same values; export parity checks them)."""

    def __init__(self, net: Any, count: int) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("taus", iqn_fractions(net, count))
        self.count = count

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.net.encoder(obs)
        embedded = self.net.head.quantile_net(self.taus)  # (K, H)
        rows = (embedded.unsqueeze(1) * x.unsqueeze(0)).reshape(-1, x.shape[-1])  # (K * B, H), quantile-major
        return self.net.head.Q(rows).reshape(self.count, -1, self.net.head.output_size).mean(0)


def iqn_reference_q(net: Any, obs: torch.Tensor, count: int) -> torch.Tensor:
    """DI-engine's own QuantileHead computation, line for line, at the fixed fractions instead of random ones."""
    head = net.head
    x = net.encoder(obs)
    batch = x.shape[0]
    quantiles = iqn_fractions(net, count).repeat_interleave(batch, dim=0)  # row k * B + b holds fraction k
    logit_x = x.repeat(count, 1) * head.quantile_net(quantiles)
    return head.Q(logit_x).reshape(count, batch, -1).mean(0)


@dataclass
class LoadedNetwork:
    model: Any  # the DI-engine model in eval mode, on the CPU
    config: dict[str, Any]  # compiled config as plain values
    source: Path
    checkpoint: dict[str, Any]
    fractions: int = IQN_FRACTIONS  # IQN only

    @property
    def env_id(self) -> str:
        return str(self.config["env"]["env_id"])

    @property
    def policy_type(self) -> str:
        return str(self.config["policy"].get("type", "dqn"))

    @property
    def model_config(self) -> dict[str, Any]:
        return dict(self.config["policy"]["model"])

    @property
    def obs_dim(self) -> int:
        shape = self.model_config["obs_shape"]
        return int(shape) if isinstance(shape, int) else int(shape[0])

    @property
    def action_count(self) -> int:
        return int(self.model_config["action_shape"])

    def q_module(self) -> torch.nn.Module:
        """obs -> expected Q-values, deterministic: what the exports compute."""
        module = IQNExpectedQ(self.model, self.fractions) if self.policy_type == "iqn" else ExpectedQ(self.model)
        return module.eval()

    def reference_q(self, obs: torch.Tensor) -> torch.Tensor:
        """The same Q-values computed by DI-engine's own modules, for the parity check."""
        if self.policy_type == "iqn":
            return iqn_reference_q(self.model, obs, self.fractions)
        return self.model(obs)["logit"]


def _compiled_config(source: Path, state: dict[str, Any], config_path: str | Path | None) -> dict[str, Any]:
    if config_path is not None:
        main, create = load_config_file(config_path)
        return to_plain(compile_dqn_config(main, create, seed=0))
    if ckpt.is_dqnkit_checkpoint(state):
        return state["config"]
    raise UserError(
        f"{source} is a plain DI-engine checkpoint without its architecture; "
        "pass --config with the config it was trained with"
    )


def load_network(
    path: str | Path, config_path: str | Path | None = None, fractions: int = IQN_FRACTIONS
) -> LoadedNetwork:
    """A dqnkit checkpoint (or run folder), or a plain DI-engine checkpoint plus the config it was trained with."""
    source = resolve_checkpoint(path)
    state = ckpt.load_checkpoint(source)
    weights = ckpt.model_state(state, source)
    config = _compiled_config(source, state, config_path)
    model_cfg = config.get("policy", {}).get("model")
    if not isinstance(model_cfg, dict) or "obs_shape" not in model_cfg or "action_shape" not in model_cfg:
        raise UserError(f"the config for {source} has no policy.model with obs_shape and action_shape")
    from dqnkit.dingext.family import ALGORITHMS  # imports DI-engine

    policy_type = config["policy"].get("type", "dqn")
    if policy_type not in ALGORITHMS:
        raise UserError(f"{source} was trained as policy type {policy_type!r}, which dqnkit does not know")
    try:
        model = ALGORITHMS[policy_type].model(**model_cfg)
    except (TypeError, ValueError) as e:
        raise UserError(f"policy.model in the config for {source} does not build a {policy_type} model: {e}") from e
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise UserError(f"the weights in {source} do not fit the config's model ({first})") from e
    model.eval()
    return LoadedNetwork(model=model, config=config, source=source, checkpoint=state, fractions=fractions)


class GreedyQ(torch.nn.Module):
    """obs [B, obs_dim] float32 -> (q_values [B, n_actions], action [B] int64): the exported interface."""

    def __init__(self, q: torch.nn.Module) -> None:
        super().__init__()
        self.q = q

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q_values = self.q(obs)
        return q_values, torch.argmax(q_values, dim=-1)


def greedy_wrapper(net: LoadedNetwork) -> GreedyQ:
    return GreedyQ(net.q_module()).eval()
