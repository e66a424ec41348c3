"""Sweeps of faults and bad inputs: kill -9 at random moments of training and resuming, and fuzzed checkpoint files,
model files and options for dqn-export and dqn-eval (hypothesis, derandomized: the same cases on every run). Each
case ends with the command's one-line contract or a checkpoint that loads."""

from __future__ import annotations

import contextlib
import io
import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CONFIGS, all_checkpoints_load, start_train, wait_while_training
from dqnkit.checkpoint import load_checkpoint

pytestmark = [pytest.mark.sweep, pytest.mark.timeout(900)]


def _checkpoint_stamps(run: Path) -> dict[str, int]:
    stamps = {}
    for path in run.glob("*.pth.tar"):
        with contextlib.suppress(FileNotFoundError):  # a periodic checkpoint the trainer just pruned
            stamps[path.name] = path.stat().st_mtime_ns
    return stamps


def test_kill_9_at_random_moments_never_truncates_a_checkpoint(tmp_path: Path) -> None:
    rng = random.Random(1234)
    run = tmp_path / "runs" / "k9"
    fresh = [
        "--config",
        str(CONFIGS / "cartpole.py"),
        "--exp-name",
        "k9",
        "--stop-value",
        "1e9",
        "--set",
        "dqnkit.save_freq=5",
        "--set",
        "dqnkit.keep_periodic=2",
        "--quiet",
    ]
    for kill in range(5):  # each round ~6 s, mostly start-up
        before = _checkpoint_stamps(run)
        proc = start_train(["--resume", str(run), "--quiet"] if kill else fresh, tmp_path)
        # Kill at a random moment of training, not of start-up: how long start-up takes depends on the machine.
        wait_while_training(
            proc, lambda stamps=before: _checkpoint_stamps(run) != stamps, "training wrote no checkpoint"
        )
        time.sleep(rng.uniform(0.0, 1.5))  # a checkpoint every 5 iters: kills land before, during and after writes
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        assert all_checkpoints_load(run), "a kill left no checkpoint to resume from"
    assert (run / "latest.pth.tar").is_file() and (run / "best.pth.tar").is_file()


def _run_in_process(main, argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit as e:
            return int(e.code or 0), err.getvalue()
    return 0, err.getvalue()


def _mutations(original: bytes):
    return st.one_of(
        st.just(b""),
        st.binary(min_size=1, max_size=2048),
        st.integers(0, len(original) - 1).map(lambda n: original[:n]),
        st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(1, 255)), min_size=1, max_size=12).map(
            lambda flips: _flip(original, flips)
        ),
    )


def _flip(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for pos, mask in flips:
        out[pos] ^= mask
    return bytes(out)


def _assert_clean_outcome(code: int, err: str, prog: str) -> None:
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"{prog}: error:"), err


FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


def test_export_survives_fuzzed_checkpoint_files(trained_cartpole: Path, tmp_path_factory) -> None:
    from dqnkit.cli.export import main

    original = (trained_cartpole / "best.pth.tar").read_bytes()
    reference = torch.load(trained_cartpole / "best.pth.tar", weights_only=True)["model"]

    @FUZZ
    @given(data=_mutations(original))
    def check(data: bytes) -> None:
        work = tmp_path_factory.mktemp("fx")
        target = work / "ckpt.pth.tar"
        target.write_bytes(data)
        code, err = _run_in_process(main, ["--ckpt", str(target), "--out", str(work / "out")])
        _assert_clean_outcome(code, err, "dqn-export")
        if code == 0:  # a flip in bytes torch never reads (zip padding): the checksummed content is intact
            loaded = load_checkpoint(target)["model"]
            assert all(torch.equal(loaded[k], reference[k]) for k in reference)

    check()


def test_export_survives_fuzzed_options(trained_cartpole: Path, tmp_path_factory) -> None:
    from dqnkit.cli.export import main

    @FUZZ
    @given(
        fmt=st.one_of(st.sampled_from(["all", "onnx", "torchscript"]), ANY_TEXT),
        opset=st.one_of(st.integers(-5, 40).map(str), ANY_TEXT),
        config=st.sampled_from([None, "nope.py", ""]),
    )
    def check(fmt: str, opset: str, config: str | None) -> None:
        work = tmp_path_factory.mktemp("fo")
        argv = ["--ckpt", str(trained_cartpole), "--format", fmt, "--opset", opset, "--out", str(work)]
        code, err = _run_in_process(main, argv + (["--config", config] if config is not None else []))
        _assert_clean_outcome(code, err, "dqn-export")

    check()


@pytest.mark.parametrize("name", ["model.onnx", "model.pt", "best.pth.tar"])
def test_eval_survives_fuzzed_model_files(
    exported_cartpole: Path, trained_cartpole: Path, tmp_path_factory, name: str
) -> None:
    from dqnkit.cli.eval import main

    source = trained_cartpole / name if name.endswith(".pth.tar") else exported_cartpole / name
    original = source.read_bytes()

    @FUZZ
    @given(data=_mutations(original))
    def check(data: bytes) -> None:
        target = tmp_path_factory.mktemp("fe") / name
        target.write_bytes(data)
        code, err = _run_in_process(main, [str(target), "--episodes", "1", "--quiet"])
        _assert_clean_outcome(code, err, "dqn-eval")

    check()


def test_eval_survives_fuzzed_options(exported_cartpole: Path) -> None:
    from dqnkit.cli.eval import main

    numbers = st.one_of(st.integers(-3, 3).map(str), st.sampled_from(["nan", "inf", "-0", "1e9", "0.5"]), ANY_TEXT)

    @FUZZ
    @given(
        episodes=numbers,
        epsilon=numbers,
        envs=numbers,
        seed=numbers,
        env=st.sampled_from([None, "CartPole-v1", "LunarLander-v2", "Nope-v0", ""]),
    )
    def check(episodes: str, epsilon: str, envs: str, seed: str, env: str | None) -> None:
        if episodes == "1e9":
            episodes = "2"  # a valid but endless request is not a fault
        argv = [
            str(exported_cartpole / "model.onnx"),
            "--episodes",
            episodes,
            "--epsilon",
            epsilon,
            "--envs",
            envs,
            "--seed",
            seed,
            "--quiet",
        ]
        code, err = _run_in_process(main, argv + (["--env", env] if env is not None else []))
        _assert_clean_outcome(code, err, "dqn-eval")

    check()
