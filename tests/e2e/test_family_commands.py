"""The DQN family from the command line: each type trains CartPole to its stop value, exports with parity, and plays
the same episodes from its checkpoint and its ONNX export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import yaml

from conftest import CONFIGS, cli


@pytest.mark.parametrize("policy_type", ["c51", "qrdqn", "iqn", "rainbow"])
def test_each_type_trains_exports_and_evaluates_alike(policy_type: str, tmp_path: Path) -> None:
    config = str(CONFIGS / f"cartpole_{policy_type}.py")
    trained = cli("dqn-train", "--config", config, "--exp-name", "run", "--quiet", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    run = tmp_path / "runs" / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "stop_value", summary
    assert yaml.safe_load((run / "config.yaml").read_text())["policy"]["type"] == policy_type

    exported = cli("dqn-export", "--ckpt", str(run), "--distribution")
    assert exported.returncode == 0, exported.stderr
    report = json.loads((run / "export" / "export.json").read_text())
    assert report["policy_type"] == policy_type
    assert report["iqn_fractions"] == (32 if policy_type == "iqn" else None)
    assert all(report["parity"][fmt]["passed"] for fmt in ("torchscript", "onnx"))
    _assert_distribution_behind_q(run / "export" / "model.onnx")

    returns = {}
    for model in (run, run / "export" / "model.onnx"):  # model.pt passed the same parity check as model.onnx
        out = tmp_path / f"{model.name}.json"
        evaluated = cli("dqn-eval", str(model), "--episodes", "3", "--json", str(out), "--quiet")
        assert evaluated.returncode == 0, evaluated.stderr
        returns[model.name] = [e["episode_return"] for e in json.loads(out.read_text())["episodes"]]
    assert len(set(map(tuple, returns.values()))) == 1, returns
    if policy_type == "iqn":  # the number of fractions is the user's
        out = tmp_path / "q8"
        exported = cli("dqn-export", "--ckpt", str(run), "--quantiles", "8", "--format", "onnx", "--out", str(out))
        assert exported.returncode == 0, exported.stderr
        eight = json.loads((out / "export.json").read_text())
        assert eight["iqn_fractions"] == 8 and eight["parity"]["onnx"]["passed"]


def _assert_distribution_behind_q(model: Path) -> None:
    """The third output is the return distribution whose mean (over the support, or over the quantiles) is the
    exported Q-values, as the metadata describes it."""
    session = ort.InferenceSession(str(model))
    meta = json.loads(session.get_modelmeta().custom_metadata_map["dqnkit_metadata"])
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    q_values, _, distribution = session.run(["q_values", "action", "distribution"], {"obs": obs})
    described = meta["distribution"]
    if "support" in described:
        assert distribution.shape == (16, 2, len(described["support"]))
        mean = (distribution * np.asarray(described["support"], dtype=np.float32)).sum(-1)
    else:
        assert distribution.shape == (16, 2, len(described["fractions"]))
        mean = distribution.mean(-1)
    assert np.abs(mean - q_values).max() <= 1e-4 * max(1.0, float(np.abs(q_values).max()))
