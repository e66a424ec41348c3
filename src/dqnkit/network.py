"""A checkpoint's Q-network as a DI-engine `ding.model.DQN`, rebuilt from the architecture the checkpoint stores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dqnkit import checkpoint as ckpt
from dqnkit.config import compile_dqn_config, load_config_file, to_plain
from dqnkit.errors import UserError
from dqnkit.runfolder import resolve_checkpoint


@dataclass
class LoadedNetwork:
    model: Any  # ding.model.DQN in eval mode, on the CPU
    config: dict[str, Any]  # compiled config as plain values
    source: Path
    checkpoint: dict[str, Any]

    @property
    def env_id(self) -> str:
        return str(self.config["env"]["env_id"])

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


def load_network(path: str | Path, config_path: str | Path | None = None) -> LoadedNetwork:
    """A dqnkit checkpoint (or run folder), or a plain DI-engine checkpoint plus the config it was trained with."""
    from dqnkit.quiet import import_ding_quietly

    source = resolve_checkpoint(path)
    state = ckpt.load_checkpoint(source)
    weights = ckpt.model_state(state, source)
    if config_path is not None:
        main, create = load_config_file(config_path)
        config = to_plain(compile_dqn_config(main, create, seed=0))
    elif ckpt.is_dqnkit_checkpoint(state):
        config = state["config"]
    else:
        raise UserError(
            f"{source} is a plain DI-engine checkpoint without its architecture; "
            "pass --config with the config it was trained with"
        )
    model_cfg = config.get("policy", {}).get("model")
    if not isinstance(model_cfg, dict) or "obs_shape" not in model_cfg or "action_shape" not in model_cfg:
        raise UserError(f"the config for {source} has no policy.model with obs_shape and action_shape")

    import_ding_quietly()
    from ding.model import DQN

    try:
        model = DQN(**model_cfg)
    except (TypeError, ValueError) as e:
        raise UserError(f"policy.model in the config for {source} does not build a DQN: {e}") from e
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise UserError(f"the weights in {source} do not fit the config's model ({first})") from e
    model.eval()
    return LoadedNetwork(model=model, config=config, source=source, checkpoint=state)


class GreedyQ(torch.nn.Module):
    """obs [B, obs_dim] float32 -> (q_values [B, n_actions], action [B] int64): the exported interface."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q_values = self.net(obs)["logit"]
        return q_values, torch.argmax(q_values, dim=-1)


def greedy_wrapper(model: Any) -> GreedyQ:
    return GreedyQ(model).eval()
