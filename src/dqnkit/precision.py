"""Reduced-precision ONNX exports (fp16, int8) with ONNX Runtime's own tools, and the check of behaviour that decides
whether one may be written: the greedy actions it picks on states the policy visits, and the return it earns over
the seeded episodes the fp32 model plays, within that model's 95% confidence interval. Its Q-values may differ."""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dqnkit.errors import CheckFailed

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


@dataclass
class Session:
    """An ONNX Runtime session over a model's bytes, as dqn-eval runs it: one thread."""

    blob: bytes

    def __post_init__(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(self.blob, options, providers=["CPUExecutionProvider"])

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        return self.session.run(["q_values"], {"obs": obs})[0]

    def latency_us(self, obs: np.ndarray) -> float:
        """Median wall time of one batch-1 call."""
        times = []
        for i in range(LATENCY_CALLS):
            row = obs[i % len(obs)][None]
            started = time.perf_counter()
            self.session.run(["q_values", "action"], {"obs": row})
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1e6


def _returns(session: Session, meta: dict[str, Any], episodes: int) -> list[float]:
    from dqnkit.evaluate import Agent, run_episodes

    agent = Agent("onnx", Path("(in memory)"), meta, session.q_values)
    played, _ = run_episodes(agent, agent.env_ref, episodes=episodes, seed=CHECK_SEED, epsilon=0.0, n_envs=8)
    return [e.episode_return for e in played]


def confidence_interval(returns: list[float]) -> tuple[float, float]:
    """The 95% confidence interval of the mean return (normal approximation)."""
    mean = statistics.fmean(returns)
    half = 1.96 * statistics.stdev(returns) / math.sqrt(len(returns)) if len(returns) > 1 else 0.0
    return mean - half, mean + half


@dataclass
class Reference:
    """What every reduced model of one export is checked against, measured once: the fp32 model's greedy actions
    on the visited states, its returns over the check's episodes, its size and latency."""

    actions: np.ndarray
    returns: list[float]
    size: int  # bytes
    latency_us: float

    @classmethod
    def measure(cls, fp32: bytes, visited: np.ndarray, meta: dict[str, Any], episodes: int) -> Reference:
        session = Session(fp32)
        actions = session.q_values(visited).argmax(1)
        return cls(actions, _returns(session, meta, episodes), len(fp32), session.latency_us(visited))


def check_behaviour(reference: Reference, reduced: bytes, visited: np.ndarray, meta: dict[str, Any]) -> dict[str, Any]:
    """The report of `reduced` against the fp32 model; report["passed"] says whether it may be written."""
    candidate = Session(reduced)
    episodes = len(reference.returns)
    agreement = float((reference.actions == candidate.q_values(visited).argmax(1)).mean())
    low, high = confidence_interval(reference.returns)
    mean = statistics.fmean(_returns(candidate, meta, episodes))
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
        "batch_1_latency_us": candidate.latency_us(visited),
        "fp32_batch_1_latency_us": reference.latency_us,
        "passed": agreement >= MIN_ACTION_AGREEMENT and low <= mean <= high,
    }
