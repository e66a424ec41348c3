"""Benchmark: per-action latency (batch 1) and throughput (batch 256) of a trained Q-network in three forms:
the DI-engine model in eager PyTorch, the exported TorchScript model.pt and the exported ONNX model.onnx
(onnxruntime with 1 thread and with its default threads). Writes benchmarks/results/infer-<date>.{json,md}.

    python scripts/bench_infer.py --ckpt runs/lunarlander_dqn_seed0       # exports to a temporary folder first
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np

from results_io import RESULTS, command_line, machine, save_results


def time_per_call(fn: Callable[[], object], min_seconds: float) -> float:
    for _ in range(20):
        fn()
    calls, started = 0, time.perf_counter()
    while True:
        for _ in range(50):
            fn()
        calls += 50
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return elapsed / calls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="dqnkit checkpoint or run folder")
    p.add_argument("--seconds", type=float, default=2.0, help="minimum timing window per measurement")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()

    import onnxruntime as ort
    import torch

    from dqnkit.export import export_checkpoint
    from dqnkit.network import load_network

    net = load_network(args.ckpt)
    export_dir = Path(tempfile.mkdtemp(prefix="bench-infer-"))
    export_checkpoint(args.ckpt, out_dir=export_dir, log=lambda _: None)
    scripted = torch.jit.load(str(export_dir / "model.pt"))
    sessions = {}
    for label, threads in (("onnx (1 thread)", 1), ("onnx (default threads)", 0)):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        sessions[label] = ort.InferenceSession(
            str(export_dir / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    rng = np.random.default_rng(0)
    rows = []
    for batch in (1, 256):
        obs = rng.normal(size=(batch, *net.obs_shape)).astype(np.float32)
        obs_t = torch.from_numpy(obs)

        def eager(obs_t: torch.Tensor = obs_t) -> object:
            with torch.no_grad():
                return net.model(obs_t)["logit"].argmax(-1)

        def torchscript(obs_t: torch.Tensor = obs_t) -> object:
            with torch.no_grad():
                return scripted(obs_t)

        candidates: dict[str, Callable[[], object]] = {"DI-engine eager": eager, "model.pt (TorchScript)": torchscript}
        for label, session in sessions.items():
            candidates[f"model.onnx, {label}"] = lambda s=session, o=obs: s.run(["q_values", "action"], {"obs": o})
        base = None
        for label, fn in candidates.items():
            seconds = time_per_call(fn, args.seconds)
            base = base or seconds
            rows.append(
                {
                    "batch": batch,
                    "runtime": label,
                    "us_per_call": seconds * 1e6,
                    "actions_per_second": batch / seconds,
                    "speedup_vs_eager": base / seconds,
                }
            )

    stamp = date.today().isoformat()
    meta = {
        "date": stamp,
        "checkpoint": str(net.source),
        "env_id": net.env_id,
        "machine": f"{machine()}, torch threads {torch.get_num_threads()}",
        "command": command_line("bench_infer.py"),
    }
    lines = [
        f"# Inference benchmark, {stamp}",
        "",
        f"{net.env_id} network from `{net.source}`; {meta['machine']}.",
        f"Command: `{meta['command']}`.",
        "",
        "| batch | runtime | µs per call | actions/s | vs eager |",
        "| ---: | --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['batch']} | {r['runtime']} | {r['us_per_call']:.1f} | {r['actions_per_second']:,.0f} | "
        f"{r['speedup_vs_eager']:.1f}x |"
        for r in rows
    ]
    save_results(args.out, "infer", {"meta": meta, "rows": rows}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
