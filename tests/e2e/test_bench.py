"""Smoke tests: each benchmark script runs on a tiny CartPole budget and writes the files it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import CONFIGS, REPO


def _script(name: str, *args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / name), *args], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_bench_train_runs_both_systems_and_writes_json_md_png(tmp_path: Path) -> None:
    _script(
        "bench_train.py",
        "--seeds",
        "0",
        "--dqnkit",
        f"dqnkit={CONFIGS / 'cartpole.py'}",
        "--systems",
        "stock",
        "dqnkit",
        "--stock-config",
        "dizoo/classic_control/cartpole/config/cartpole_dqn_config.py",
        "--stock-env-id",
        "CartPole-v1",
        "--max-env-steps",
        "400",  # DI-engine's CartPole recipe evaluates often: once its agent balances, evaluations dominate
        "--eval-episodes",
        "3",
        "--out",
        str(tmp_path),
    )
    [result] = list(tmp_path.glob("train-*.json"))
    data = json.loads(result.read_text())
    assert [r["system"] for r in data["runs"]] == ["stock", "dqnkit"]
    for run in data["runs"]:
        assert run["env_steps"] > 0 and run["wall_seconds"] > 0 and len(run["curve"]) >= 1
        assert set(run["eval"]) == {"mean", "std", "min", "success_rate"}
    assert data["summary"]["baseline"] == "stock" and data["summary"]["ratios"]["dqnkit"]["env_steps"] > 0
    assert "| stock | 0 |" in result.with_suffix(".md").read_text()
    assert result.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_bench_family_runs_each_type_and_writes_json_md_png(tmp_path: Path) -> None:
    _script(
        "bench_family.py",
        *("--seeds", "0", "--types", "dqn", "iqn", "--configs", str(CONFIGS / "cartpole")),
        *("--max-env-steps", "600", "--eval-episodes", "2", "--export-episodes", "2", "--out", str(tmp_path)),
    )
    [result] = list(tmp_path.glob("family-*.json"))
    data = json.loads(result.read_text())
    exports = data["meta"]["exports"]
    assert set(exports) == {"dqn", "iqn"}
    assert all(exports[t][p]["bytes"] > 0 and "passed" in exports[t][p] for t in exports for p in ("fp16", "int8"))
    assert [r["type"] for r in data["runs"]] == ["dqn", "iqn"]
    assert all(r["env_steps"] > 0 and r["curve"] and set(r["eval"]) >= {"mean", "success_rate"} for r in data["runs"])
    assert set(data["summary"]) == {"dqn", "iqn"}
    assert "| iqn | 0 |" in result.with_suffix(".md").read_text()
    assert result.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_bench_infer_and_bench_eval_write_their_tables(trained_cartpole: Path, tmp_path: Path) -> None:
    _script("bench_infer.py", "--ckpt", str(trained_cartpole), "--seconds", "0.2", "--out", str(tmp_path))
    rows = json.loads(next(tmp_path.glob("infer-*.json")).read_text())["rows"]
    assert {r["batch"] for r in rows} == {1, 256} and len(rows) == 8
    assert all(r["us_per_call"] > 0 for r in rows)

    _script("bench_eval.py", "--ckpt", str(trained_cartpole), "--episodes", "3", "--envs", "2", "--out", str(tmp_path))
    result = json.loads(next(tmp_path.glob("eval-*.json")).read_text())
    assert result["dqn_eval_onnx_seconds"] > 0 and result["plain_loop_seconds"] > 0
    assert result["dqn_eval_mean_return"] == result["plain_loop_mean_return"]


def test_bench_workers_compares_one_process_with_workers(tmp_path: Path) -> None:
    _script(
        "bench_workers.py",
        "--workers",
        "1",
        "3",
        "--seeds",
        "0",
        "--throughput-steps",
        "200",
        "--max-env-steps",
        "400",
        "--out",
        str(tmp_path),
    )
    [result] = list(tmp_path.glob("workers-cartpole-*.json"))
    data = json.loads(result.read_text())
    assert [r["workers"] for r in data["solve"]] == [1, 3]
    assert all(r["stop_reason"] in ("stop_value", "max_env_steps") for r in data["solve"])
    assert all(r["env_steps"] > 200 and r["env_steps_per_second"] > 0 for r in data["throughput"])
    table = result.with_suffix(".md").read_text()
    solved = {r["workers"]: int(r["stop_reason"] == "stop_value") for r in data["solve"]}
    assert f"| 1 | {solved[1]}/1 |" in table and f"| 3 | {solved[3]}/1 |" in table
