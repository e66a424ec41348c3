"""The checkpoint format: written whole with the umask in force, read only as weights, refused when changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from conftest import hostile_checkpoint
from dqnkit import checkpoint as ckpt
from dqnkit.errors import UserError


def _checkpoint() -> dict:
    layer = torch.nn.Linear(4, 2)
    state = {"model": layer.state_dict(), "target_model": layer.state_dict(), "optimizer": {"state": {}}}
    return ckpt.build_checkpoint(
        state,
        env_step=320,
        train_iter=50,
        config={"env": {"env_id": "CartPole-v1"}},
        last_eval={"mean": 9.5, "std": 0.5, "min": 9.0, "max": 10.0},
        best_eval=9.5,
        last_eval_iter=0,
        wall_seconds=1.25,
    )


def test_a_saved_checkpoint_loads_back_equal_with_weights_only(tmp_path: Path) -> None:
    written = _checkpoint()
    path = tmp_path / "best.pth.tar"
    ckpt.save_checkpoint(written, path)
    loaded = ckpt.load_checkpoint(path)
    assert ckpt.is_dqnkit_checkpoint(loaded)
    assert loaded["env_step"] == 320 and loaded["train_iter"] == 50 and loaded["best_eval"] == 9.5
    assert loaded["versions"]["dqnkit"] == written["versions"]["dqnkit"]
    assert all(torch.equal(loaded["model"][k], v) for k, v in written["model"].items())
    assert [p.name for p in tmp_path.iterdir()] == ["best.pth.tar"], "a temporary file was left behind"


def test_a_changed_value_fails_the_checksum(tmp_path: Path) -> None:
    tampered = _checkpoint()
    tampered["model"]["weight"][0, 0] += 1.0  # after the checksum was taken
    path = tmp_path / "tampered.pth.tar"
    torch.save(tampered, path)
    with pytest.raises(UserError, match="corrupted: its content does not match the checksum"):
        ckpt.load_checkpoint(path)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "is empty"),
        (b"hello, I am a text file\n", "not a valid"),
        (None, "not a valid checkpoint"),  # the first half of a real checkpoint
    ],
)
def test_files_that_are_not_checkpoints(tmp_path: Path, content: bytes | None, fragment: str) -> None:
    path = tmp_path / "x.pth.tar"
    if content is None:
        ckpt.save_checkpoint(_checkpoint(), path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(UserError, match=fragment):
        ckpt.load_checkpoint(path)


def test_a_pickle_that_would_run_code_is_refused_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth.tar"
    hostile_checkpoint(evil, marker)
    with pytest.raises(UserError, match=r"refused.*nothing in it was run"):
        ckpt.load_checkpoint(evil)
    assert not marker.exists()


def test_non_finite_weights_are_named(tmp_path: Path) -> None:
    state = {"w": torch.tensor([1.0, float("nan")])}
    with pytest.raises(UserError, match=r"non-finite weights .* in w"):
        ckpt.model_state({"model": state}, tmp_path / "x")


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_files_get_the_permissions_the_umask_in_force_gives(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        ckpt.save_checkpoint(_checkpoint(), tmp_path / "c.pth.tar")
    finally:
        os.umask(previous)
    assert (tmp_path / "c.pth.tar").stat().st_mode & 0o777 == 0o666 & ~umask


def test_importing_dqnkit_leaves_the_umask_alone() -> None:
    import subprocess
    import sys

    code = "import os; os.umask(0o027); import dqnkit.checkpoint, dqnkit.files; print(oct(os.umask(0)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0o27"
