"""A checkpoint's Q-network as the DI-engine model its policy type trains (`ding.model.DQN`, `C51DQN`, `QRDQN`,
`IQN`, `RainbowDQN`), rebuilt from the architecture the checkpoint stores, and the deterministic expected Q-values
the greedy policy acts on, which exports and evaluation use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dqnkit import checkpoint as ckpt
from dqnkit.config import compile_dqn_config, load_config_file, to_plain
from dqnkit.envs import EnvRef, takes_frames
from dqnkit.errors import UserError
from dqnkit.runfolder import resolve_checkpoint

IQN_FRACTIONS = 32  # evenly spaced quantile fractions for IQN's expected Q, unless the user picks another count


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Small-batch inference on one torch thread, as training runs: on a busy machine a second thread's hand-offs
    made a batch-1 forward of the Nature network ~50x slower (benchmarks/NOTES.md). Gives back the count found."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# Which output of DI-engine's model holds the return distribution: C51's and Rainbow's probabilities over the support,
# QR-DQN's quantile values (IQN's are computed at fixed fractions by IQNExpectedQ).
DISTRIBUTION_OUTPUT = {"c51": "distribution", "rainbow": "distribution", "qrdqn": "q"}


class ExpectedQ(torch.nn.Module):
    """obs -> the network's `logit`: DQN's Q-values; for C51 and Rainbow the mean over the support, for QR-DQN over
    the quantiles (Rainbow's noisy layers use their mean weights in eval mode)."""

    def __init__(self, net: torch.nn.Module, distribution_output: str | None) -> None:
        super().__init__()
        self.net = net
        self.distribution_output = distribution_output

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)["logit"]

    def with_distribution(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q-values, the return distribution [B, A, atoms or quantiles])."""
        assert self.distribution_output is not None
        out = self.net(obs)
        return out["logit"], out[self.distribution_output]


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

    def quantile_values(self, obs: torch.Tensor) -> torch.Tensor:
        """[K, B, A]: each action's return quantile at each fraction."""
        x = self.net.encoder(obs)
        embedded = self.net.head.quantile_net(self.taus)  # (K, H)
        rows = (embedded.unsqueeze(1) * x.unsqueeze(0)).reshape(-1, x.shape[-1])  # (K * B, H), quantile-major
        return self.net.head.Q(rows).reshape(self.count, -1, self.net.head.output_size)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.quantile_values(obs).mean(0)

    def with_distribution(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values = self.quantile_values(obs)
        return values.mean(0), values.permute(1, 2, 0)


def iqn_reference_values(net: Any, obs: torch.Tensor, count: int) -> torch.Tensor:
    """DI-engine's own QuantileHead computation, line for line, at the fixed fractions instead of random ones:
    [K, B, A] quantile values."""
    head = net.head
    x = net.encoder(obs)
    batch = x.shape[0]
    quantiles = iqn_fractions(net, count).repeat_interleave(batch, dim=0)  # row k * B + b holds fraction k
    logit_x = x.repeat(count, 1) * head.quantile_net(quantiles)
    return head.Q(logit_x).reshape(count, batch, -1)


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
    def obs_shape(self) -> list[int]:
        """One observation's shape: [obs_dim] for vectors, [stack, height, width] for Atari frames."""
        shape = self.model_config["obs_shape"]
        return [int(shape)] if isinstance(shape, int) else [int(x) for x in shape]

    @property
    def env_ref(self) -> EnvRef:
        """The env it was trained on: id, constructor arguments, where a user's module lives, preprocessing."""
        return EnvRef.of(self.config["env"])

    @property
    def obs_dtype(self) -> str:
        """What the network takes: uint8 frames (it scales them itself) or float32 vectors."""
        return "uint8" if takes_frames(self.obs_shape) else "float32"

    def example_obs(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, *self.obs_shape, dtype=getattr(torch, self.obs_dtype))

    @property
    def action_count(self) -> int:
        return int(self.model_config["action_shape"])

    @property
    def has_distribution(self) -> bool:
        return self.policy_type == "iqn" or self.policy_type in DISTRIBUTION_OUTPUT

    def q_module(self) -> IQNExpectedQ | ExpectedQ:
        """obs -> expected Q-values, deterministic: what the exports compute."""
        if self.policy_type == "iqn":
            return IQNExpectedQ(self.model, self.fractions).eval()
        return ExpectedQ(self.model, DISTRIBUTION_OUTPUT.get(self.policy_type)).eval()

    def reference(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(Q-values, return distribution or None) computed by DI-engine's own modules, for the parity check."""
        if self.policy_type == "iqn":
            values = iqn_reference_values(self.model, obs, self.fractions)
            return values.mean(0), values.permute(1, 2, 0)
        out = self.model(obs)
        key = DISTRIBUTION_OUTPUT.get(self.policy_type)
        return out["logit"], out[key] if key is not None else None

    def distribution_meta(self) -> dict[str, Any]:
        """What the exports' `distribution` output holds, for a deployer."""
        model = self.model_config
        shape = "float32 [batch, n_actions, n_quantiles]"
        if self.policy_type in ("c51", "rainbow"):
            support = torch.linspace(model["v_min"], model["v_max"], model["n_atom"]).tolist()
            return {
                "kind": "probabilities over the support",
                "support": support,
                "shape": shape.replace("n_quantiles", "n_atom"),
            }
        if self.policy_type == "qrdqn":
            with torch.no_grad():
                fractions = self.model(self.example_obs(1))["tau"][0, :, 0].tolist()
        else:
            fractions = iqn_fractions(self.model, self.fractions)[:, 0].tolist()
        return {"kind": "quantile values at these fractions", "fractions": fractions, "shape": shape}


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
        model = ALGORITHMS[policy_type].new_model(model_cfg)
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
    """obs [B, obs_dim] float32 or [B, stack, height, width] uint8 -> (q_values [B, n_actions], action [B] int64[,
    distribution]): the exported interface."""

    def __init__(self, q: IQNExpectedQ | ExpectedQ, with_distribution: bool) -> None:
        super().__init__()
        self.q = q
        self.with_distribution = with_distribution

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.with_distribution:
            q_values, distribution = self.q.with_distribution(obs)
            return q_values, torch.argmax(q_values, dim=-1), distribution
        q_values = self.q(obs)
        return q_values, torch.argmax(q_values, dim=-1)


def greedy_wrapper(net: LoadedNetwork, with_distribution: bool = False) -> GreedyQ:
    return GreedyQ(net.q_module(), with_distribution).eval()
