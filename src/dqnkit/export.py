"""Checkpoint -> standalone TorchScript (model.pt) and ONNX (model.onnx), proven equal to the DI-engine network.

Both files take `obs` float32 [batch, obs_dim] (Atari: uint8 frames [batch, 4, 84, 84], scaled inside) and return
`q_values` float32 [batch, n_actions] and `action` int64 [batch]. Nothing is written under a final name until the
file, loaded back from its exact bytes, passes the parity check against the DI-engine network on real and random
observations.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from dqnkit import checkpoint as ckpt
from dqnkit import precision
from dqnkit.actions import explore, greedy
from dqnkit.envs import make_raw_env, require_fit, reset_env, step_env
from dqnkit.errors import CheckFailed, UserError
from dqnkit.files import atomic_write_bytes
from dqnkit.network import IQN_FRACTIONS, LoadedNetwork, greedy_wrapper, load_network, one_torch_thread
from dqnkit.runfolder import default_export_dir
from dqnkit.runtime import open_bytes
from dqnkit.validate import writable_dir

FORMATS = ("torchscript", "onnx")
VISIT_EPSILON = 0.05  # the parity rollouts' random actions: visited states with some spread
FILENAMES = {"torchscript": "model.pt", "onnx": "model.onnx"}
TORCHSCRIPT_METADATA = "dqnkit_metadata.json"
ONNX_METADATA_KEY = "dqnkit_metadata"
PARITY_OBSERVATIONS = 4096
RELATIVE_TOLERANCE = 1e-5
DEFAULT_OPSET = 17


class ParityError(CheckFailed):
    """An exported file does not reproduce the DI-engine network: nothing was written."""


@dataclass
class ExportResult:
    out_dir: Path
    files: dict[str, Path]
    report: dict[str, Any]


# --- metadata ---------------------------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def build_metadata(net: LoadedNetwork, facts: dict[str, Any], with_distribution: bool = False) -> dict[str, Any]:
    state = net.checkpoint
    model_cfg = net.model_config
    outputs = {"q_values": "float32 [batch, n_actions]", "action": "int64 [batch]"}
    if with_distribution:
        outputs["distribution"] = net.distribution_meta()["shape"]
    return {
        "format": "dqnkit-export/1",
        "env_id": net.env_id,
        "obs_shape": net.obs_shape,
        "obs_dtype": net.obs_dtype,
        # The preprocessing a deployer applies to raw Atari frames (dqnkit.atari.AtariSettings); None for vectors.
        "atari": net.env_ref.atari,
        # What builds the env (id, env.kwargs, the folder of a user's env module): dqn-eval of the file needs nothing
        # more.
        "env": net.env_ref.recorded(),
        "action_count": net.action_count,
        "policy_type": net.policy_type,
        # IQN's Q-values are the mean over these evenly spaced quantile fractions; None for the other types.
        "iqn_fractions": net.fractions if net.policy_type == "iqn" else None,
        "encoder_hidden_size_list": model_cfg.get("encoder_hidden_size_list"),
        "dueling": bool(model_cfg.get("dueling", net.policy_type in ("dqn", "rainbow"))),
        "reward_threshold": facts["reward_threshold"],
        "render_fps": facts["render_fps"],
        "source_checkpoint": str(net.source),
        "source_sha256": ckpt.sha256_file(net.source),
        "env_step": state.get("env_step"),
        "train_iter": state.get("train_iter") or state.get("last_iter"),
        "best_eval_return": state.get("best_eval"),
        "versions": {
            **ckpt.versions(),
            "onnx": _version("onnx"),
            "onnxruntime": _version("onnxruntime"),
        },
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs": {"obs": f"{net.obs_dtype} [batch, {', '.join(map(str, net.obs_shape))}]"},
        "outputs": outputs,
        # The return distribution behind q_values, when exported as the third output: what it holds.
        "distribution": net.distribution_meta() if with_distribution else None,
    }


# --- building the two formats, in memory --------------------------------------------------------------------------


def torchscript_bytes(net: LoadedNetwork, meta: dict[str, Any]) -> bytes:
    import torch

    wrapper = greedy_wrapper(net, "distribution" in meta["outputs"])
    example = net.example_obs(2)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(wrapper, example)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer, _extra_files={TORCHSCRIPT_METADATA: json.dumps(meta)})
    return buffer.getvalue()


def onnx_bytes(net: LoadedNetwork, meta: dict[str, Any], opset: int) -> bytes:
    import onnx
    import torch

    outputs = list(meta["outputs"])
    wrapper = greedy_wrapper(net, "distribution" in outputs)
    example = net.example_obs(2)
    buffer = io.BytesIO()
    batch = {0: "batch"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # dynamo=False: torch 2.13's default exporter needs onnxscript; the TorchScript-based one does not.
        torch.onnx.export(
            wrapper,
            (example,),
            buffer,  # type: ignore[arg-type]  # a file object works; the stub says path only
            input_names=["obs"],
            output_names=outputs,
            dynamic_axes={"obs": batch, **{name: batch for name in outputs}},
            opset_version=opset,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    entries = {ONNX_METADATA_KEY: json.dumps(meta)}
    for key in (
        "env_id",
        "obs_shape",
        "action_count",
        "source_sha256",
        "env_step",
        "train_iter",
        "best_eval_return",
    ):
        entries[key] = json.dumps(meta[key]) if not isinstance(meta[key], str) else meta[key]
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    proto.producer_name = "dqnkit"
    onnx.checker.check_model(proto, full_check=True)
    return bytes(proto.SerializeToString())


# --- parity ------------------------------------------------------------------------------------------------------


def parity_observations(net: LoadedNetwork, facts: dict[str, Any], count: int, seed: int = 12345) -> np.ndarray:
    """Half states the trained policy visits in the real env (5% random actions for spread), half random points
    within the observation bounds (unbounded axes, including CartPole's +-3.4e38, use the visited range widened by
    its span on both sides; Atari: random frames)."""
    rng = np.random.default_rng(seed)
    real = _visited_observations(net, count // 2, rng, seed)
    if net.obs_dtype == "uint8":
        return np.concatenate([real, rng.integers(0, 256, size=(count - len(real), *real.shape[1:]), dtype=np.uint8)])
    low = np.asarray(facts["obs_low"], dtype=np.float64)
    high = np.asarray(facts["obs_high"], dtype=np.float64)
    span = real.max(0) - real.min(0) + 1.0
    bounded = np.isfinite(low) & np.isfinite(high) & (np.abs(low) < 1e4) & (np.abs(high) < 1e4)
    low = np.where(bounded, low, real.min(0) - span)
    high = np.where(bounded, high, real.max(0) + span)
    random_points = rng.uniform(low, high, size=(count - len(real), real.shape[1])).astype(np.float32)
    return np.concatenate([real, random_points])


def _visited_observations(net: LoadedNetwork, count: int, rng: np.random.Generator, seed: int) -> np.ndarray:
    import torch

    q = net.q_module()
    visited: list[np.ndarray] = []
    env = make_raw_env(net.env_ref)
    try:
        episode = 0
        while len(visited) < count and episode < 200:
            obs = reset_env(env, seed + episode)
            done = False
            while not done and len(visited) < count:
                obs = np.asarray(obs, dtype=net.obs_dtype)
                visited.append(obs)
                with torch.no_grad():
                    best = greedy(q(torch.from_numpy(obs[None])).numpy())[0]
                obs, _, done, _ = step_env(env, explore(best, VISIT_EPSILON, rng, net.action_count))
            episode += 1
    finally:
        env.close()
    return np.stack(visited)


def _batched(run: Any, obs: np.ndarray, batch: int) -> list[np.ndarray]:
    parts = [run(obs[start : start + batch]) for start in range(0, len(obs), batch)]
    return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]


def check_parity(fmt: str, blob: bytes, obs: np.ndarray, ref: tuple[np.ndarray, np.ndarray | None]) -> dict[str, Any]:
    """The file's outputs against DI-engine's network: Q-values within tolerance, the same greedy action wherever
    the top two Q-values differ by more than it, and the return distribution (when exported) within its own."""
    run = open_bytes(fmt, blob).outputs
    q_ref, dist_ref = ref
    tolerance = RELATIVE_TOLERANCE * max(1.0, float(np.abs(q_ref).max()))
    sorted_q = np.sort(q_ref, axis=1)
    decisive = (sorted_q[:, -1] - sorted_q[:, -2]) > tolerance
    report: dict[str, Any] = {"tolerance": tolerance, "observations": len(obs), "decisive": int(decisive.sum())}
    ok = True
    for batch in (1, 256):
        q_all, a_all, *rest = _batched(run, obs, batch)
        if q_all.dtype != np.float32 or a_all.dtype != np.int64 or q_all.shape != q_ref.shape:
            raise ParityError(f"{fmt}: outputs have dtype/shape {q_all.dtype}{q_all.shape}, {a_all.dtype}{a_all.shape}")
        agree = a_all == greedy(q_ref)
        result = report[f"batch_{batch}"] = {
            "max_abs_q_diff": float(np.abs(q_all.astype(np.float64) - q_ref).max()),
            "action_agreement": float(agree.mean()),
            "decisive_action_mismatches": int((~agree & decisive).sum()),
        }
        ok = ok and result["max_abs_q_diff"] <= tolerance and result["decisive_action_mismatches"] == 0
        if dist_ref is not None:
            result["max_abs_distribution_diff"] = float(np.abs(rest[0].astype(np.float64) - dist_ref).max())
            ok = ok and result["max_abs_distribution_diff"] <= RELATIVE_TOLERANCE * max(
                1.0, float(np.abs(dist_ref).max())
            )
    report["passed"] = ok
    return report


def reference_outputs(
    net: LoadedNetwork, obs: np.ndarray, with_distribution: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """DI-engine's network on `obs`, in float64: Q-values, and the return distribution when it is exported."""
    import torch

    q_parts, dist_parts = [], []
    with torch.no_grad():
        for i in range(0, len(obs), 256):
            q, dist = net.reference(torch.from_numpy(obs[i : i + 256]))
            q_parts.append(q.numpy())
            if with_distribution and dist is not None:
                dist_parts.append(dist.numpy())
    q_ref = np.concatenate(q_parts).astype(np.float64)
    return q_ref, np.concatenate(dist_parts).astype(np.float64) if dist_parts else None


# --- the command's one call ----------------------------------------------------------------------------------------


def _check_all(
    blobs: dict[str, bytes], obs: np.ndarray, ref: tuple[np.ndarray, np.ndarray | None], out: Path, log: Any
) -> dict[str, Any]:
    parity: dict[str, Any] = {}
    for fmt, blob in blobs.items():
        parity[fmt] = check_parity(fmt, blob, obs, ref)
        b1, b256 = parity[fmt]["batch_1"], parity[fmt]["batch_256"]
        log(
            f"{FILENAMES[fmt]:<10} max |dq| {max(b1['max_abs_q_diff'], b256['max_abs_q_diff']):.2e} "
            f"(tolerance {parity[fmt]['tolerance']:.2e}) over {len(obs):,} obs at batch 1 and 256; "
            f"greedy actions agree {min(b1['action_agreement'], b256['action_agreement']):.2%}, "
            f"{b1['decisive_action_mismatches'] + b256['decisive_action_mismatches']} decisive mismatches"
        )
    failed = [fmt for fmt, r in parity.items() if not r["passed"]]
    if failed:
        raise ParityError(
            f"parity check failed for {', '.join(FILENAMES[f] for f in failed)}; nothing was written to {out}"
        )
    return parity


def _reduced(
    onnx_blob: bytes, precisions: tuple[str, ...], visited: np.ndarray, episodes: int, log: Any
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The reduced-precision models that act like the fp32 one, and the check's report for each."""
    blobs: dict[str, bytes] = {}
    reports: dict[str, Any] = {}
    if not precisions:
        return blobs, reports
    reference = precision.Reference.measure(onnx_blob, visited, episodes)
    for name in precisions:
        blob = precision.convert(onnx_blob, name)
        report = reports[name] = precision.check_behaviour(reference, blob, visited)
        low, high = report["fp32_confidence_interval_95"]
        log(
            f"{precision.filename(name):<16} greedy actions agree {report['action_agreement']:.2%} on visited states; "
            f"mean return {report['mean_return']:.1f} over {episodes} episodes (fp32 95% interval {low:.1f} to "
            f"{high:.1f}); {report['bytes']:,} bytes, {report['batch_1_latency_us']:.1f} us at batch 1"
        )
        if not report["passed"]:
            raise precision.BehaviourError(
                f"{precision.filename(name)} does not act like the fp32 model (actions agree "
                f"{report['action_agreement']:.1%}, at least {precision.MIN_ACTION_AGREEMENT:.0%} needed; mean "
                f"return {report['mean_return']:.1f}, fp32 interval {low:.1f} to {high:.1f}); nothing was written"
            )
        blobs[name] = blob
    return blobs, reports


def _write(out: Path, named_blobs: dict[str, bytes], report: dict[str, Any]) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for name, blob in named_blobs.items():
        atomic_write_bytes(out / name, blob)
        files[name] = out / name
        report["files"][name] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
    atomic_write_bytes(out / "export.json", json.dumps(report, indent=2).encode() + b"\n")
    return files


@one_torch_thread()
def export_checkpoint(
    ckpt_path: str | Path,
    *,
    formats: tuple[str, ...] = FORMATS,
    out_dir: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    config_path: str | Path | None = None,
    fractions: int = IQN_FRACTIONS,
    precisions: tuple[str, ...] = (),
    check_episodes: int = 20,
    distribution: bool = False,
    log: Any = print,
) -> ExportResult:
    """Every file is checked before any is written: parity for the fp32 models, behaviour for reduced ones."""
    net = load_network(ckpt_path, config_path, fractions)
    facts = require_fit(net.env_ref, net.obs_shape, net.action_count, f"the network in {net.source}")
    out = Path(out_dir) if out_dir is not None else default_export_dir(net.source)
    writable_dir(out, "--out" if out_dir is not None else "export folder", create=False)
    if distribution and not net.has_distribution:
        raise UserError(f"--distribution: policy type {net.policy_type} learns no return distribution to export")
    meta = build_metadata(net, facts, distribution)
    blobs: dict[str, bytes] = {}
    for fmt in formats:
        blobs[fmt] = torchscript_bytes(net, meta) if fmt == "torchscript" else onnx_bytes(net, meta, opset)
    obs = parity_observations(net, facts, PARITY_OBSERVATIONS)
    parity = _check_all(blobs, obs, reference_outputs(net, obs, distribution), out, log)
    reduced, behaviour = _reduced(blobs.get("onnx", b""), precisions, obs[: len(obs) // 2], check_episodes, log)
    named = {FILENAMES[fmt]: blob for fmt, blob in blobs.items()}
    named.update({precision.filename(name): blob for name, blob in reduced.items()})
    report = {**meta, "files": {}, "parity": parity, "reduced_precision": behaviour}
    files = _write(out, named, report)
    return ExportResult(out, files, report)
