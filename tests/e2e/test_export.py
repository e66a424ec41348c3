"""dqn-export: standalone files, parity with the DI-engine network, and refusal of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from conftest import CONFIGS, assert_user_error, cli, hostile_checkpoint

# A module finder that makes the named packages impossible to import, as on a machine without them.
BLOCKER = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ImportError(f'{name} is blocked in this test')
sys.meta_path.insert(0, _Block())
"""


def _standalone(blocked: list[str], body: str) -> subprocess.CompletedProcess[str]:
    code = f"BLOCKED = {blocked!r}\n{BLOCKER}\n{body}"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def _reference_q(run_dir: Path, obs: np.ndarray) -> np.ndarray:
    from dqnkit.network import load_network

    net = load_network(run_dir / "best.pth.tar")
    with torch.no_grad():
        return net.model(torch.from_numpy(obs))["logit"].numpy()


def test_export_writes_both_models_with_metadata_and_parity(exported_cartpole: Path, trained_cartpole: Path) -> None:
    report = json.loads((exported_cartpole / "export.json").read_text())
    assert report["env_id"] == "CartPole-v1" and report["obs_shape"] == [4] and report["action_count"] == 2
    for key in ("source_sha256", "env_step", "train_iter", "best_eval_return", "versions", "exported_at"):
        assert report[key] is not None, key
    assert set(report["versions"]) >= {"dqnkit", "ding", "torch"}
    for name in ("model.pt", "model.onnx"):
        info = report["files"][name]
        assert info["bytes"] == (exported_cartpole / name).stat().st_size
    for fmt in ("torchscript", "onnx"):
        parity = report["parity"][fmt]
        assert parity["passed"] and parity["observations"] >= 4096
        for batch in ("batch_1", "batch_256"):
            assert parity[batch]["max_abs_q_diff"] <= parity["tolerance"]
            assert parity[batch]["decisive_action_mismatches"] == 0
    model = onnx.load(str(exported_cartpole / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["env_id"] == "CartPole-v1"
    assert json.loads(props["dqnkit_metadata"])["source_sha256"] == report["source_sha256"]
    assert not list(exported_cartpole.glob(".*tmp")), "temporary files left behind"


def test_onnx_runs_without_torch_ding_or_dqnkit(exported_cartpole: Path, trained_cartpole: Path) -> None:
    obs = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32)
    expected = _reference_q(trained_cartpole, obs)
    np.save(exported_cartpole.parent / "obs.npy", obs)
    body = f"""
import json, numpy as np, onnxruntime as ort
sess = ort.InferenceSession({str(exported_cartpole / "model.onnx")!r})
obs = np.load({str(exported_cartpole.parent / "obs.npy")!r})
q, a = sess.run(['q_values', 'action'], {{'obs': obs}})
q1, a1 = sess.run(None, {{'obs': obs[:1]}})
meta = json.loads(sess.get_modelmeta().custom_metadata_map['dqnkit_metadata'])
print(json.dumps({{'q': q.tolist(), 'a': a.tolist(), 'dtype': [str(q.dtype), str(a.dtype)], 'b1': list(q1.shape),
                  'env': meta['env_id'], 'torch': 'torch' in __import__('sys').modules}}))
"""
    proc = _standalone(["torch", "ding", "dqnkit"], body)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["dtype"] == ["float32", "int64"] and out["b1"] == [1, 2] and out["env"] == "CartPole-v1"
    assert not out["torch"]
    np.testing.assert_allclose(np.array(out["q"]), expected, rtol=0, atol=1e-4)
    assert out["a"] == expected.argmax(1).tolist()


def test_torchscript_runs_without_ding_or_dqnkit(exported_cartpole: Path, trained_cartpole: Path) -> None:
    obs = np.random.default_rng(1).normal(size=(300, 4)).astype(np.float32)
    expected = _reference_q(trained_cartpole, obs)
    np.save(exported_cartpole.parent / "obs_ts.npy", obs)
    body = f"""
import json, numpy as np, torch
extra = {{'dqnkit_metadata.json': ''}}
model = torch.jit.load({str(exported_cartpole / "model.pt")!r}, _extra_files=extra)
obs = torch.from_numpy(np.load({str(exported_cartpole.parent / "obs_ts.npy")!r}))
q, a = model(obs)
print(json.dumps({{'q': q.tolist(), 'a': a.tolist(), 'dtype': [str(q.dtype), str(a.dtype)],
                  'env': json.loads(extra['dqnkit_metadata.json'])['env_id']}}))
"""
    proc = _standalone(["ding", "dqnkit"], body)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["dtype"] == ["torch.float32", "torch.int64"] and out["env"] == "CartPole-v1"
    np.testing.assert_allclose(np.array(out["q"]), expected, rtol=0, atol=1e-5)
    assert out["a"] == expected.argmax(1).tolist()


@pytest.mark.parametrize(
    ("config", "dueling"),
    [("cartpole_plain.yaml", False), ("lunarlander.py", True)],  # lunarlander_v3.py: the same network
)
def test_every_shipped_config_exports(tiny_run, tmp_path: Path, config: str, dueling: bool) -> None:
    run = tiny_run(config)
    result = cli("dqn-export", "--ckpt", str(run / "final.pth.tar"), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "max |dq|" in result.stderr and "agree" in result.stderr
    report = json.loads((tmp_path / "out" / "export.json").read_text())
    assert report["dueling"] is dueling
    assert all(report["parity"][fmt]["passed"] for fmt in ("torchscript", "onnx"))


def test_format_option_writes_only_that_format(trained_cartpole: Path, tmp_path: Path) -> None:
    result = cli("dqn-export", "--ckpt", str(trained_cartpole), "--format", "onnx", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "model.onnx").is_file() and not (tmp_path / "model.pt").exists()


def test_parity_check_detects_a_wrong_model(exported_cartpole: Path, trained_cartpole: Path) -> None:
    from dqnkit.export import check_parity

    obs = np.random.default_rng(2).normal(size=(512, 4)).astype(np.float32)
    q_ref = _reference_q(trained_cartpole, obs).astype(np.float64)
    blob = (exported_cartpole / "model.onnx").read_bytes()
    assert check_parity("onnx", blob, obs, (q_ref, None))["passed"]
    assert not check_parity("onnx", blob, obs, (q_ref + 0.01, None))["passed"]


def test_export_of_a_checkpoint_written_by_ding_ckptsaver(tmp_path: Path) -> None:
    code = f"""
import sys
sys.path.insert(0, {str(CONFIGS)!r})
from ding.config import compile_config
from ding.framework import task
from ding.framework.context import OnlineRLContext
from ding.framework.middleware import CkptSaver
from ding.model import DQN
from ding.policy import DQNPolicy
from cartpole import main_config, create_config
cfg = compile_config(main_config, create_cfg=create_config, auto=True, save_cfg=False)
policy = DQNPolicy(cfg.policy, model=DQN(**cfg.policy.model))
with task.start(ctx=OnlineRLContext()):
    ctx = task.ctx
    ctx.train_iter, ctx.eval_value = 0, 10.0
    CkptSaver(policy, {str(tmp_path / "ding_run")!r}, train_freq=100)(ctx)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    ding_ckpt = tmp_path / "ding_run" / "ckpt" / "eval.pth.tar"
    assert ding_ckpt.is_file()

    without = cli("dqn-export", "--ckpt", str(ding_ckpt))
    assert_user_error(without, "--config")
    result = cli(
        "dqn-export",
        "--ckpt",
        str(ding_ckpt),
        "--config",
        str(CONFIGS / "cartpole.py"),
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "model.onnx").is_file() and (tmp_path / "out" / "model.pt").is_file()


# --- bad input ---------------------------------------------------------------------------------------------------


@pytest.mark.contract
def test_missing_path(tmp_path: Path) -> None:
    assert_user_error(cli("dqn-export", "--ckpt", str(tmp_path / "nope.pth.tar")), "no such file")


@pytest.mark.contract
def test_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.pth.tar"
    bogus.write_text("hello, I am a text file\n")
    assert_user_error(cli("dqn-export", "--ckpt", str(bogus)), "not a valid checkpoint")


def test_truncated_and_corrupted_checkpoints(trained_cartpole: Path, tmp_path: Path) -> None:
    data = (trained_cartpole / "best.pth.tar").read_bytes()
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(data[: len(data) // 2])
    assert_user_error(cli("dqn-export", "--ckpt", str(truncated)), "not a valid checkpoint")
    corrupted = tmp_path / "corrupted.pth.tar"
    flipped = bytearray(data)
    for i in range(0, 4096, 7):
        flipped[i] ^= 0xFF
    corrupted.write_bytes(bytes(flipped))
    assert_user_error(cli("dqn-export", "--ckpt", str(corrupted)), "not a valid")


def test_weights_that_do_not_fit_the_config(trained_cartpole: Path) -> None:
    result = cli(
        "dqn-export",
        "--ckpt",
        str(trained_cartpole / "best.pth.tar"),
        "--config",
        str(CONFIGS / "lunarlander.py"),
    )
    assert_user_error(result, "do not fit")


def test_an_output_folder_that_cannot_be_made(trained_cartpole: Path, tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("")
    result = cli("dqn-export", "--ckpt", str(trained_cartpole), "--out", str(tmp_path / "a_file" / "export"))
    assert_user_error(result, "--out", "is a file, not a folder")


def _crafted(trained: Path, tmp_path: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> Path:
    """The trained CartPole agent's best checkpoint with its weights edited by `edit`, checksummed anew."""
    from dqnkit.checkpoint import content_digest

    state = torch.load(trained / "best.pth.tar", weights_only=True)
    del state["sha256"]
    edit(state["model"])
    state["sha256"] = content_digest(state)
    crafted = tmp_path / "crafted.pth.tar"
    torch.save(state, crafted)
    return crafted


def _decisive_advantage(model: dict[str, torch.Tensor]) -> None:
    """Action 1's advantage 10 above action 0's from any state, the advantages' weights shrunk 1e6-fold: whatever a
    CPU's training made of the rest of the network, Q-values still vary with the state (through V, which both
    actions share), and no rounding of int8 or fp16 can change a greedy action."""
    model["head.A.1.0.weight"].mul_(1e-6)
    model["head.A.1.0.bias"].copy_(torch.tensor([0.0, 10.0]))


def test_reduced_precision_models_are_written_when_they_act_like_fp32(trained_cartpole: Path, tmp_path: Path) -> None:
    crafted = _crafted(trained_cartpole, tmp_path, _decisive_advantage)
    out = tmp_path / "exported"
    result = cli("dqn-export", "--ckpt", str(crafted), "--out", str(out), "--precision", "int8", "--precision", "fp16")
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "export.json").read_text())
    for name in ("int8", "fp16"):
        check = report["reduced_precision"][name]
        assert check["passed"] and check["action_agreement"] == 1.0
        assert check["mean_return"] == check["fp32_mean_return"]  # the same actions in the same seeded episodes
        low, high = check["fp32_confidence_interval_95"]
        assert low <= check["mean_return"] <= high
        assert report["files"][f"model.{name}.onnx"]["bytes"] == (out / f"model.{name}.onnx").stat().st_size
    evaluated = cli("dqn-eval", str(out / "model.int8.onnx"), "--episodes", "2", "--quiet")
    assert evaluated.returncode == 0 and "onnx" in evaluated.stdout, evaluated.stderr


def _dead_unit_with_a_huge_weight(model: dict[str, torch.Tensor]) -> None:
    """A dead hidden unit with a huge outgoing weight leaves the fp32 network's outputs exactly as they were, but
    int8 quantization scales that layer's weights by the huge one: every other weight rounds to zero."""
    model["encoder.init.weight"][0].zero_()
    model["encoder.init.bias"][0] = -1e4  # unit 0 of the first layer is always 0 after its ReLU
    model["encoder.main.0.weight"][:, 0] = 1e4  # and multiplies this huge weight


def test_an_int8_model_that_does_not_act_like_fp32_is_refused(trained_cartpole: Path, tmp_path: Path) -> None:
    crafted = _crafted(trained_cartpole, tmp_path, _dead_unit_with_a_huge_weight)
    out = tmp_path / "exported"
    result = cli("dqn-export", "--ckpt", str(crafted), "--out", str(out), "--precision", "int8")
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "model.int8.onnx does not act like the fp32 model" in errors[0], result.stderr
    assert "nothing was written" in errors[0] and "Traceback" not in result.stderr
    assert not out.exists()


def test_dqn_has_no_distribution_to_export(trained_cartpole: Path, tmp_path: Path) -> None:
    result = cli("dqn-export", "--ckpt", str(trained_cartpole), "--distribution", "--out", str(tmp_path / "x"))
    assert_user_error(result, "--distribution", "policy type dqn learns no return distribution")


def test_run_folder_without_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "empty_run").mkdir()
    assert_user_error(cli("dqn-export", "--ckpt", str(tmp_path / "empty_run")), "holds no checkpoint")


def test_checkpoint_needing_arbitrary_unpickling_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth.tar"
    hostile_checkpoint(evil, marker)
    assert not marker.exists()
    assert_user_error(cli("dqn-export", "--ckpt", str(evil)), "refused")
    assert not marker.exists(), "the checkpoint's code ran"
