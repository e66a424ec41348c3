"""Reduced-precision ONNX exports (fp16, int8) with ONNX Runtime's own tools, and the check of behaviour that decides
whether one may be written: the greedy actions it picks on states the policy visits, and the return it earns over
the seeded episodes the fp32 model plays, within that model's 95% confidence interval (Student's t, as dqn-eval
gives it). Its Q-values may differ."""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dqnkit.actions import greedy
from dqnkit.errors import CheckFailed
from dqnkit.evaluate import mean_interval, run_episodes
from dqnkit.runtime import Model, open_onnx

PRECISIONS = ("fp16", "int8")
MIN_ACTION_AGREEMENT = 0.95  # on the visited parity states: where the policy's choices matter
CHECK_SEED = 2000  # the check's episodes, apart from dqn-eval's default seeds
LATENCY_CALLS = 500


class BehaviourError(CheckFailed):
    """A reduced-precision model does not act like its fp32 model: nothing was written."""


def filename(precision: str) -> str:
    return f"model.{precision}.onnx"


def convert(onnx_blob: bytes, precision: str) -> bytes:
    """The fp32 ONNX model in fp16 (weights and math; float32 inputs and outputs kept) or with int8 weights (ONNX
    Runtime's dynamic quantization), with the fp32 model's metadata and its precision."""
    import onnx

    model = onnx.load_from_string(onnx_blob)
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        reduced = convert_float_to_float16(model, keep_io_types=True)
    else:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory() as tmp:
            quantize_dynamic(model, Path(tmp) / "int8.onnx", weight_type=QuantType.QInt8)
            reduced = onnx.load(str(Path(tmp) / "int8.onnx"))
    del reduced.metadata_props[:]
    for prop in model.metadata_props:
        reduced.metadata_props.add(key=prop.key, value=prop.value)
    reduced.metadata_props.add(key="precision", value=precision)
    return bytes(reduced.SerializeToString())


def latency_us(model: Model, obs: np.ndarray) -> float:
    """Median wall time of one batch-1 call."""
    times = []
    for i in range(LATENCY_CALLS):
        row = obs[i % len(obs)][None]
        started = time.perf_counter()
        model.outputs(row)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def _returns(model: Model, episodes: int) -> list[float]:
    played, _ = run_episodes(model, model.env_ref, episodes=episodes, seed=CHECK_SEED, epsilon=0.0, n_envs=8)
    return [e.episode_return for e in played]


@dataclass
class Reference:
    """What every reduced model of one export is checked against, measured once: the fp32 model's greedy actions
    on the visited states, its returns over the check's episodes, its size and latency."""

    actions: np.ndarray
    returns: list[float]
    size: int  # bytes
    latency_us: float

    @classmethod
    def measure(cls, fp32: bytes, visited: np.ndarray, episodes: int) -> Reference:
        model = open_onnx(fp32)
        actions = greedy(model.q_values(visited))
        return cls(actions, _returns(model, episodes), len(fp32), latency_us(model, visited))


def check_behaviour(reference: Reference, reduced: bytes, visited: np.ndarray) -> dict[str, Any]:
    """The report of `reduced` against the fp32 model; report["passed"] says whether it may be written."""
    candidate = open_onnx(reduced)
    episodes = len(reference.returns)
    agreement = float((reference.actions == greedy(candidate.q_values(visited))).mean())
    low, high = mean_interval(reference.returns) or (-math.inf, math.inf)
    mean = statistics.fmean(_returns(candidate, episodes))
    return {
        "action_agreement": agreement,
        "min_action_agreement": MIN_ACTION_AGREEMENT,
        "episodes": episodes,
        "episode_seeds": f"{CHECK_SEED}-{CHECK_SEED + episodes - 1}",
        "mean_return": mean,
        "fp32_mean_return": statistics.fmean(reference.returns),
        "fp32_confidence_interval_95": [low, high],
        "bytes": len(reduced),
        "fp32_bytes": reference.size,
        "batch_1_latency_us": latency_us(candidate, visited),
        "fp32_batch_1_latency_us": reference.latency_us,
        "passed": agreement >= MIN_ACTION_AGREEMENT and low <= mean <= high,
    }
