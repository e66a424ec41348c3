"""The one checkpoint format: what a dqnkit checkpoint holds, how it is written and how it is read.

A checkpoint is DI-engine's policy state dict ('model', 'target_model', 'optimizer') plus what resuming and
exporting need. It contains only tensors and plain Python values, so `torch.load(weights_only=True)` reads it.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

from dqnkit import __version__
from dqnkit.errors import UserError
from dqnkit.files import atomic_write_bytes

FORMAT = "dqnkit-checkpoint"
FORMAT_VERSION = 1
REPLAY_FORMAT = "dqnkit-replay"  # a replay buffer saved beside a checkpoint, to refill on --resume


def versions() -> dict[str, str]:
    out = {"dqnkit": __version__}
    for dist, key in (("DI-engine", "ding"), ("torch", "torch")):
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = "unknown"
    return out


def content_digest(value: Any) -> str:
    """sha256 over a checkpoint's content (tensor bytes and plain values, in a fixed order), so that a flipped bit
    anywhere that torch.load would read is caught: torch's zip reader does not check CRCs."""
    import torch

    digest = hashlib.sha256()

    def feed(node: Any) -> None:
        if isinstance(node, torch.Tensor):
            t = node.detach().cpu().contiguous()
            digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(node, dict):
            digest.update(b"{")
            for key in sorted(node, key=str):
                digest.update(repr(key).encode())
                feed(node[key])
            digest.update(b"}")
        elif isinstance(node, list | tuple):
            digest.update(b"[")
            for item in node:
                feed(item)
            digest.update(b"]")
        else:
            digest.update(repr(node).encode())

    feed(value)
    return digest.hexdigest()


def build_checkpoint(
    policy_state: dict[str, Any],
    *,
    env_step: int,
    train_iter: int,
    config: dict[str, Any],
    last_eval: dict[str, float] | None,
    best_eval: float | None,
    last_eval_iter: int,
    wall_seconds: float,
    random_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    checkpoint = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": policy_state["model"],
        "target_model": policy_state["target_model"],
        "optimizer": policy_state["optimizer"],
        "env_step": int(env_step),
        "train_iter": int(train_iter),
        "last_eval_iter": int(last_eval_iter),
        "wall_seconds": float(wall_seconds),
        "config": config,
        "last_eval": last_eval,
        "best_eval": best_eval,
        "versions": versions(),
    }
    if random_state is not None:  # the generators as they were when the state was taken (dqnkit.rngstate)
        checkpoint["random_state"] = random_state
    checkpoint["sha256"] = content_digest(checkpoint)
    return checkpoint


def build_replay(buffer_state: dict[str, Any], *, env_step: int, train_iter: int) -> dict[str, Any]:
    """A replay buffer's contents, stamped with the training step of the checkpoint it goes with."""
    replay = {
        "format": REPLAY_FORMAT,
        "format_version": FORMAT_VERSION,
        "buffer": buffer_state,
        "env_step": int(env_step),
        "train_iter": int(train_iter),
        "versions": versions(),
    }
    replay["sha256"] = content_digest(replay)
    return replay


def save_checkpoint(checkpoint: dict[str, Any], path: Path) -> None:
    import torch

    # Serialize in memory first: torch.save reports a failed file write (a full disk) as a RuntimeError.
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load any checkpoint safely (weights_only=True); every failure becomes a one-line UserError."""
    import torch

    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise UserError(f"{path} is not a file")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty, not a checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses any global or opcode outside torch's allow-list; garbage bytes can look like one.
        match = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        detail = f"; unpickling it would call {match.group(1)}" if match else ""
        raise UserError(
            f"{path} refused: not a valid weights-only checkpoint (corrupted, or unsafe to unpickle{detail}); "
            "nothing in it was run"
        ) from e
    except (
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        OSError,
        KeyError,
        UnicodeDecodeError,
    ) as e:
        raise UserError(f"{path} is not a valid checkpoint (truncated, corrupted or another file type)") from e
    except Exception as e:  # torch raises many types for garbage input; none of them is the user's bug
        raise UserError(f"{path} is not a valid checkpoint ({type(e).__name__})") from e
    if not isinstance(obj, dict):
        raise UserError(f"{path} is not a checkpoint: it holds a {type(obj).__name__}, not a dict")
    if is_dqnkit_checkpoint(obj) or obj.get("format") == REPLAY_FORMAT:
        stored = obj.pop("sha256", None)
        if stored != content_digest(obj):
            raise UserError(f"{path} is corrupted: its content does not match the checksum written with it")
    return obj


def load_replay(path: Path) -> dict[str, Any]:
    """A saved replay buffer, checked like a checkpoint."""
    obj = load_checkpoint(path)
    if obj.get("format") != REPLAY_FORMAT:
        raise UserError(f"{path} is not a dqnkit replay buffer file")
    return obj


def is_dqnkit_checkpoint(obj: dict[str, Any]) -> bool:
    return obj.get("format") == FORMAT


def model_state(obj: dict[str, Any], path: Path) -> dict[str, Any]:
    """The network weights of a dqnkit or plain DI-engine checkpoint."""
    import torch

    state = obj.get("model")
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path} holds no 'model' weights: not a DI-engine or dqnkit checkpoint")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise UserError(
            f"{path} holds non-finite weights (NaN or inf) in {bad[0]}: training diverged or the file is damaged"
        )
    return state


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
