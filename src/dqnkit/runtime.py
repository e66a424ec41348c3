"""One runtime for a model in any of its forms: a dqnkit checkpoint (through DI-engine's network), a TorchScript
file or an ONNX file (ONNX Runtime alone: torch is not imported), opened from a path or from the exact bytes an
export is about to write. dqn-eval plays it, dqn-export checks parity and reduced precision with it."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from dqnkit.envs import EnvRef, takes_frames
from dqnkit.errors import UserError

METADATA_KEY = "dqnkit_metadata"  # the ONNX metadata entry; TorchScript's extra file is METADATA_KEY + ".json"


@dataclass
class Model:
    kind: str  # "checkpoint" | "torchscript" | "onnx"
    path: Path
    meta: dict[str, Any]
    outputs: Callable[[np.ndarray], list[np.ndarray]]  # obs [B, ...] -> q_values [B, n] first, then what it gives

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        return self.outputs(obs)[0]

    @property
    def env_id(self) -> str:
        return str(self.meta["env_id"])

    @cached_property
    def env_ref(self) -> EnvRef:
        """The env the model was trained on, from its metadata (exports before dqnkit 0.x recorded the id only)."""
        recorded = self.meta.get("env") or {"env_id": self.meta["env_id"], "atari": self.meta.get("atari")}
        return EnvRef.of(recorded)

    @cached_property
    def input_dtype(self) -> type[np.generic]:
        """uint8 for frame stacks (the network scales them itself), float32 for vectors."""
        return np.uint8 if takes_frames(self.meta["obs_shape"]) else np.float32

    def as_input(self, obs: Any) -> np.ndarray:
        return np.asarray(obs, dtype=self.input_dtype)


def open_model(model: str | Path, config_path: str | Path | None = None) -> Model:
    """A run folder (its best checkpoint), a checkpoint, model.pt or model.onnx. config_path: the training config,
    for plain DI-engine checkpoints (they store no architecture)."""
    from dqnkit import runfolder

    path = Path(model)
    if path.is_dir():
        return open_checkpoint(runfolder.find_checkpoint(path), config_path)
    if not path.exists():
        raise UserError(f"no such model file or run folder: {path}")
    if path.suffix == ".onnx":
        return open_onnx(path)
    if path.suffix == ".pt":
        return open_torchscript(path)
    return open_checkpoint(path, config_path)


def open_onnx(source: Path | bytes, label: str = "(in memory)") -> Model:
    """An ONNX model on one thread (batch-1 latency: threads cost more than they give)."""
    import onnxruntime as ort

    path = source if isinstance(source, Path) else Path(label)
    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(
            str(source) if isinstance(source, Path) else source, options, providers=["CPUExecutionProvider"]
        )
        raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    except Exception as e:  # onnxruntime raises its own exception types for bad files
        raise UserError(f"{path} is not a valid ONNX model ({type(e).__name__})") from e
    if raw is None:
        raise UserError(f"{path} is an ONNX model without dqnkit metadata; export it with dqn-export")

    def outputs(obs: np.ndarray) -> list[np.ndarray]:
        return list(session.run(None, {"obs": obs}))

    return Model("onnx", path, json.loads(raw), outputs)


def open_torchscript(source: Path | bytes, label: str = "(in memory)") -> Model:
    import torch

    path = source if isinstance(source, Path) else Path(label)
    extra = {f"{METADATA_KEY}.json": ""}
    try:
        module = torch.jit.load(
            str(source) if isinstance(source, Path) else io.BytesIO(source), map_location="cpu", _extra_files=extra
        )
        meta = json.loads(extra[f"{METADATA_KEY}.json"])
    except Exception as e:  # torch.jit.load raises RuntimeError and friends for non-TorchScript input
        raise UserError(f"{path} is not a dqnkit TorchScript model ({type(e).__name__})") from e

    def outputs(obs: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            return [t.numpy() for t in module(torch.from_numpy(obs))]

    return Model("torchscript", path, meta, outputs)


def open_checkpoint(path: Path, config_path: str | Path | None = None) -> Model:
    import torch

    from dqnkit.envs import env_facts
    from dqnkit.network import load_network

    net = load_network(path, config_path)
    q = net.q_module()  # IQN: at the fractions dqn-export uses by default
    facts = env_facts(net.env_ref)
    meta = {
        "env_id": net.env_id,
        "env": net.env_ref.recorded(),
        "obs_shape": net.obs_shape,
        "action_count": net.action_count,
        "reward_threshold": facts["reward_threshold"],
        "render_fps": facts["render_fps"],
    }

    def outputs(obs: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            return [q(torch.from_numpy(obs)).numpy()]

    return Model("checkpoint", net.source, meta, outputs)


def open_bytes(fmt: str, blob: bytes) -> Model:
    """The model an export is about to write, from its exact bytes ("torchscript" or "onnx")."""
    return open_torchscript(blob) if fmt == "torchscript" else open_onnx(blob)
