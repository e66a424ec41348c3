"""Faults inflicted for real: signals, kill -9, a dead env worker, a full or read-only disk, hostile files."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import (
    BIN,
    CONFIGS,
    all_checkpoints_load,
    assert_user_error,
    session_processes,
    start_train,
    tmpfs,
    wait_for_rows,
    wait_gone,
)
from dqnkit.checkpoint import load_checkpoint


@pytest.mark.parametrize(
    ("sig", "manager", "code"), [(signal.SIGINT, "base", 130), (signal.SIGTERM, "subprocess", 143)]
)
def test_signal_writes_final_and_summary_and_resume_continues_exactly(
    tmp_path: Path, sig: int, manager: str, code: int
) -> None:
    proc = start_train(
        [
            "--config",
            str(CONFIGS / "cartpole.py"),
            "--exp-name",
            "sig",
            "--env-manager",
            manager,
            "--stop-value",
            "1e9",
        ],
        tmp_path,
    )
    run = tmp_path / "runs" / "sig"
    wait_for_rows(run / "metrics.csv", 3, proc)
    os.killpg(proc.pid, sig)  # like Ctrl-C in a terminal: the trainer and its env workers all get it
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert wait_gone(proc.pid, timeout=15) == [], "env workers left running"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted"
    final = load_checkpoint(run / "final.pth.tar")
    assert (final["env_step"], final["train_iter"]) == (summary["env_steps"], summary["train_iters"])

    resumed = start_train(["--resume", str(run), "--max-train-iters", str(final["train_iter"] + 100)], tmp_path)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert f"at env step {final['env_step']}, train iter {final['train_iter']}" in err
    after = load_checkpoint(run / "final.pth.tar")
    assert after["train_iter"] > final["train_iter"] + 100 and after["env_step"] > final["env_step"]


def test_the_evaluator_process_ends_when_the_trainer_is_killed_alone(tmp_path: Path) -> None:
    """The OOM killer's way: SIGKILL to the trainer only. Its evaluator process must not live on."""
    proc = start_train(
        ["--config", str(CONFIGS / "cartpole.py"), "--exp-name", "alone", "--stop-value", "1e9", "--quiet"], tmp_path
    )
    wait_for_rows(tmp_path / "runs" / "alone" / "metrics.csv", 2, proc)
    assert len(session_processes(proc.pid)) == 2, "the trainer and its evaluator"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert wait_gone(proc.pid, timeout=15) == [], "the evaluator process outlived the trainer"


class _CartPole:
    """dqnkit's real CartPole env for DI-engine's env managers; subclasses add a fault to one of its methods."""

    def __init__(self) -> None:
        from dqnkit.envs import EnvRef, make_ding_env

        self.env = make_ding_env(EnvRef("CartPole-v1"))
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)


class _SlowResettingCartPole(_CartPole):
    """Resets after the first take 3 s: a window to kill its worker in."""

    def reset(self) -> Any:
        self.calls += 1
        if self.calls > 1:
            time.sleep(3)
        return self.env.reset()


def test_a_dead_env_worker_stops_training_with_a_final_checkpoint(tmp_path: Path) -> None:
    proc = start_train(
        [
            "--config",
            str(CONFIGS / "cartpole.py"),
            "--exp-name",
            "w",
            "--env-manager",
            "subprocess",
            "--stop-value",
            "1e9",
        ],
        tmp_path,
    )
    run = tmp_path / "runs" / "w"
    wait_for_rows(run / "metrics.csv", 2, proc)
    workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert workers, "no env worker processes found"
    os.kill(int(workers[0]), signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert re.search(r"dqn-train: error: training failed: \w+", err), err
    assert json.loads((run / "summary.json").read_text())["stop_reason"] == "failed"
    load_checkpoint(run / "final.pth.tar")
    assert wait_gone(proc.pid, timeout=15) == [], "processes left behind"


def test_an_env_worker_dying_while_its_env_resets_ends_the_run() -> None:
    """SubprocessEnvManager resets an env after its episode in a background thread. When the worker dies there,
    the thread closes the manager and keeps the error; DI-engine's collector and evaluator then launch fresh
    workers and training went on (a CI run's dead-worker test waited 60 s for a run that never stopped). dqnkit's
    managers refuse the second launch, so the failure ends the run like a worker dying in a step does."""
    import numpy as np
    from ding.envs import SubprocessEnvManagerV2

    from dqnkit.dingext.envmanager import SubprocessEnvManager
    from dqnkit.train.processes import close_env

    manager = SubprocessEnvManager(env_fn=[_SlowResettingCartPole], cfg=SubprocessEnvManagerV2.default_config())
    manager.launch()
    worker = manager._subprocesses[0]
    try:
        while not any(t.done for t in manager.step([np.array(0)])):
            pass
        time.sleep(0.5)  # the reset thread now waits on the worker's 3 s reset
        os.kill(worker.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not manager.closed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert manager.closed, "DI-engine's reset thread did not close the manager"
        with pytest.raises(RuntimeError, match=r"an env worker failed and DI-engine closed its env manager \(\w+"):
            manager.launch()  # what StepCollector does when it finds the manager closed
        assert manager._subprocesses[0] is worker  # no fresh workers were started
    finally:
        close_env(manager, "collector")
    assert not worker.is_alive()


def test_a_full_disk_stops_training_with_one_line_and_intact_checkpoints(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "runs", "1800k") as runs:
        proc = start_train(
            [
                "--config",
                str(CONFIGS / "cartpole.py"),
                "--exp-name",
                "full",
                "--stop-value",
                "1e9",
                "--set",
                "dqnkit.save_freq=20",
            ],
            tmp_path,
        )
        _, err = proc.communicate(timeout=120)
        assert_user_error(
            type("R", (), {"returncode": proc.returncode, "stderr": _last_line(err)})(),
            "No space left on device",
            "intact",
        )
        assert "Traceback" not in err
        assert all_checkpoints_load(runs / "full"), "no good checkpoint survived"


def test_a_runs_folder_turned_read_only_stops_training_cleanly(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = start_train(["--config", str(CONFIGS / "cartpole.py"), "--exp-name", "ro", "--stop-value", "1e9"], tmp_path)
    wait_for_rows(runs / "ro" / "metrics.csv", 2, proc)
    # A read-only bind mount over the folder: new files there fail with EROFS, as on a disk remounted read-only.
    if subprocess.run(["mount", "--bind", str(runs), str(runs)], capture_output=True).returncode != 0:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.skip("cannot bind-mount here")
    try:
        _remount_read_only(runs)
        _, err = proc.communicate(timeout=60)
    finally:
        subprocess.run(["umount", "-l", str(runs)], capture_output=True)
    assert proc.returncode == 2, err
    assert "Read-only file system" in _last_line(err) and "Traceback" not in err
    assert all_checkpoints_load(runs / "ro")


def _remount_read_only(path: Path) -> None:
    """Turn the bind mount at `path` read-only. The kernel refuses (EBUSY) while a file there is open for writing,
    and the trainer keeps writing metrics and checkpoints: try again until a moment with none open."""
    deadline = time.monotonic() + 10
    while True:
        result = subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], capture_output=True, text=True)
        if result.returncode == 0:
            return
        if "busy" not in result.stderr or time.monotonic() > deadline:
            raise RuntimeError(f"mount -o remount,bind,ro {path}: {result.stderr.strip()}")
        time.sleep(0.01)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def test_same_seed_same_losses_and_eval_returns(tmp_path: Path) -> None:
    rows = []
    for name in ("a", "b"):
        proc = start_train(
            [
                "--config",
                str(CONFIGS / "cartpole.py"),
                "--exp-name",
                name,
                "--seed",
                "5",
                "--max-train-iters",
                "400",
                "--stop-value",
                "1e9",
                "--quiet",
            ],
            tmp_path,
        )
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        with open(tmp_path / "runs" / name / "metrics.csv") as f:
            rows.append([{k: v for k, v in r.items() if k != "wall_seconds"} for r in csv.DictReader(f)])
    assert len(rows[0]) >= 4
    assert rows[0] == rows[1]


def test_a_hostile_pickle_is_refused_by_eval_and_resume(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "best.pth.tar"
    torch.save({"format": "dqnkit-checkpoint", "model": {}, "x": Exploit()}, evil)
    for args in (["dqn-eval", str(evil)], ["dqn-train", "--resume", str(evil)]):
        proc = subprocess.run(
            [str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert_user_error(type("R", (), {"returncode": proc.returncode, "stderr": proc.stderr})(), "refused")
    assert not marker.exists()


def test_a_signal_inside_an_in_process_env_step_still_counts_as_an_interruption() -> None:
    """DI-engine's base env manager catches whatever an env step raises, dqnkit's Interrupted included, and raises a
    RuntimeError of its own (a Ctrl-C landing there once ended a CI run as "failed", exit 1, instead of 130). The
    signal handler remembers the signal, which is what dqn-train then stops on."""
    import numpy as np
    from ding.envs import BaseEnvManagerV2

    from dqnkit.signals import InterruptSignals

    class CtrlCOnThirdStep(_CartPole):
        """Receives a real SIGINT in the middle of its third step."""

        def step(self, action: Any) -> Any:
            self.calls += 1
            if self.calls == 3:
                os.kill(os.getpid(), signal.SIGINT)
            return self.env.step(action)

    manager = BaseEnvManagerV2(env_fn=[CtrlCOnThirdStep], cfg=BaseEnvManagerV2.default_config())
    signals = InterruptSignals()
    before = signal.getsignal(signal.SIGINT)
    with signals:
        manager.launch()
        with pytest.raises(RuntimeError, match="SIGINT"):
            for _ in range(3):
                manager.step([np.array(0)])
    manager.close()
    assert signals.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) == before  # the previous handler is back


def test_a_signal_inside_an_asyncio_callback_unwinds_instead_of_being_logged(caplog: pytest.LogCaptureFixture) -> None:
    """DI-engine's distributed nodes wait on an asyncio loop; asyncio logs and swallows any exception a callback
    raises except KeyboardInterrupt and SystemExit. A Ctrl-C landing in such a callback once printed a traceback
    from a worker (a CI run failed on it) instead of ending the run through the stop path."""
    import asyncio

    from dqnkit.errors import Interrupted
    from dqnkit.signals import InterruptSignals

    async def wait_a_while() -> None:
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGINT)
        await asyncio.sleep(2)

    loop = asyncio.new_event_loop()
    started = time.monotonic()
    try:
        with InterruptSignals() as signals, pytest.raises(Interrupted):
            loop.run_until_complete(wait_a_while())
    finally:
        loop.close()
    assert time.monotonic() - started < 1
    assert signals.signum == signal.SIGINT
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_signal_before_training_starts_exits_with_its_own_code(capsys: pytest.CaptureFixture[str]) -> None:
    """A SIGTERM while dqn-train still builds its envs ends the command as 128 + 15, one line, no traceback."""
    from dqnkit.errors import run_command
    from dqnkit.signals import InterruptSignals

    def builds_envs() -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        return 0

    with InterruptSignals(), pytest.raises(SystemExit) as exited:
        run_command("dqn-train", builds_envs)
    assert exited.value.code == 143
    assert capsys.readouterr().err == "dqn-train: interrupted\n"
