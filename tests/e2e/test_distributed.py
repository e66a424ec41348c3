"""dqn-train on DI-engine's Parallel runtime: real nodes over nng on localhost and across two network namespaces."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import CONFIGS, assert_user_error, cli, session_processes, start_train, wait_for_rows, wait_gone
from dqnkit.checkpoint import load_checkpoint

CARTPOLE = str(CONFIGS / "cartpole.py")


def _node_pids(sid: int) -> dict[str, int]:
    """The node processes of a local run by title ('dqn-train: collector node 2' -> pid)."""
    pids = {}
    for pid in session_processes(sid):
        with contextlib.suppress(OSError):
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if title.startswith("dqn-train: "):
                pids[title.removeprefix("dqn-train: ").strip()] = pid
    return pids


@pytest.mark.slow
def test_three_workers_reach_the_stop_value_and_the_run_exports_and_evaluates(tmp_path: Path) -> None:
    proc = start_train(["--config", CARTPOLE, "--workers", "3", "--exp-name", "dist"], tmp_path)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert wait_gone(proc.pid) == [], "worker processes left behind"
    run = tmp_path / "runs" / "dist"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "stop_value", summary
    assert summary["best_eval"] >= 195
    rows = (run / "metrics.csv").read_text().splitlines()
    # Evaluations sent from the evaluator node to the learner. The first is usually of the untrained network
    # (train iter 0); with 3 processes on 2 cores the learner can be ~100 CartPole iterations ahead by the time the
    # evaluator's loop starts, and the evaluator then evaluates at the learner's count.
    iters = [int(row.split(",")[1]) for row in rows[1:]]
    assert len(iters) >= 2 and iters == sorted(iters) and iters[0] <= 200, iters
    for name in ("best", "latest", "final"):
        checkpoint = load_checkpoint(run / f"{name}.pth.tar")
        assert checkpoint["env_step"] > 0
    [events] = run.glob("events.out.tfevents.*")  # one TensorBoard log, the learner's, with the evaluator's results
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(events))
    board.Reload()
    assert len(board.Scalars("basic/eval_episode_return_mean")) == len(rows) - 1
    assert (run / "curve.png").is_file()

    exported = cli("dqn-export", "--ckpt", str(run))
    assert exported.returncode == 0, exported.stderr
    report = tmp_path / "report.json"
    evaluated = cli("dqn-eval", str(run / "export" / "model.onnx"), "--episodes", "3", "--json", str(report), "--quiet")
    assert evaluated.returncode == 0, evaluated.stderr
    # best.pth.tar holds the weights the evaluator node scored, so they play as well again on fresh episodes.
    assert json.loads(report.read_text())["stats"]["mean"] >= 150


def test_ctrl_c_stops_every_worker_and_leaves_a_final_checkpoint(tmp_path: Path) -> None:
    proc = start_train(["--config", CARTPOLE, "--workers", "3", "--exp-name", "sig", "--stop-value", "1e9"], tmp_path)
    run = tmp_path / "runs" / "sig"
    wait_for_rows(run / "metrics.csv", 2, proc)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends: the launcher forwards it to each node once
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert wait_gone(proc.pid) == [], "worker processes left behind"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted"
    final = load_checkpoint(run / "final.pth.tar")
    assert (final["env_step"], final["train_iter"]) == (summary["env_steps"], summary["train_iters"])

    resumed = start_train(
        ["--resume", str(run), "--workers", "3", "--max-train-iters", str(final["train_iter"] + 50)], tmp_path
    )
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert f"at env step {final['env_step']}, train iter {final['train_iter']}" in err
    after = load_checkpoint(run / "final.pth.tar")
    assert after["train_iter"] > final["train_iter"] + 50 and after["env_step"] > final["env_step"]


def test_a_dead_collector_stops_the_run_with_a_final_checkpoint(tmp_path: Path) -> None:
    proc = start_train(["--config", CARTPOLE, "--workers", "3", "--exp-name", "dead", "--stop-value", "1e9"], tmp_path)
    run = tmp_path / "runs" / "dead"
    wait_for_rows(run / "metrics.csv", 2, proc)
    os.kill(_node_pids(proc.pid)["collector node 2"], signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    last_line = err.strip().splitlines()[-1]
    assert last_line == "dqn-train: error: collector node 2 died (killed by SIGKILL); the run stopped"
    assert wait_gone(proc.pid) == [], "worker processes left behind"
    assert json.loads((run / "summary.json").read_text())["stop_reason"] == "failed"
    load_checkpoint(run / "final.pth.tar")


def test_killing_the_launcher_leaves_no_worker_behind(tmp_path: Path) -> None:
    proc = start_train(
        ["--config", CARTPOLE, "--workers", "3", "--exp-name", "orphan", "--stop-value", "1e9"], tmp_path
    )
    wait_for_rows(tmp_path / "runs" / "orphan" / "metrics.csv", 1, proc)
    assert sorted(_node_pids(proc.pid)) == ["collector node 2", "evaluator node 1", "learner node 0"]
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert wait_gone(proc.pid) == [], "worker processes outlived their launcher"
    load_checkpoint(tmp_path / "runs" / "orphan" / "final.pth.tar")  # the learner still stopped cleanly


@pytest.mark.contract
def test_distributed_option_mistakes_are_one_line(tmp_path: Path) -> None:
    """The other option mistakes are checked in process (tests/unit/test_nodes.py)."""
    assert_user_error(cli("dqn-train", "--config", CARTPOLE, "--workers", "2", cwd=tmp_path), "needs at least 3")
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------------------------------------------------------
# Two "hosts": network namespaces joined by a veth pair, made by the test.


@pytest.fixture
def two_hosts() -> Iterator[tuple[list[str], list[str]]]:
    """(command prefix for host A at 10.77.0.1, for host B at 10.77.0.2)."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("needs root and iproute2 (ip netns) to create two network namespaces")
    tag = uuid.uuid4().hex[:6]
    a, b = f"dqa{tag}", f"dqb{tag}"
    setup = [
        ["ip", "netns", "add", a],
        ["ip", "netns", "add", b],
        ["ip", "link", "add", f"va{tag}", "type", "veth", "peer", "name", f"vb{tag}"],
        ["ip", "link", "set", f"va{tag}", "netns", a],
        ["ip", "link", "set", f"vb{tag}", "netns", b],
        ["ip", "-n", a, "addr", "add", "10.77.0.1/24", "dev", f"va{tag}"],
        ["ip", "-n", b, "addr", "add", "10.77.0.2/24", "dev", f"vb{tag}"],
        ["ip", "-n", a, "link", "set", f"va{tag}", "up"],
        ["ip", "-n", b, "link", "set", f"vb{tag}", "up"],
        ["ip", "-n", a, "link", "set", "lo", "up"],
        ["ip", "-n", b, "link", "set", "lo", "up"],
    ]
    try:
        for command in setup:
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"cannot create network namespaces here: {' '.join(command)}: {done.stderr.strip()}")
        yield ["ip", "netns", "exec", a], ["ip", "netns", "exec", b]
    finally:
        for name in (a, b):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.mark.slow
def test_a_run_across_two_hosts_trains(tmp_path: Path, two_hosts: tuple[list[str], list[str]]) -> None:
    host_a, host_b = two_hosts
    learner_addr, evaluator_addr = "tcp://10.77.0.1:50515", "tcp://10.77.0.1:50516"
    common = ["--config", CARTPOLE, "--stop-value", "1e9", "--quiet"]
    learner_only = ["--exp-name", "two_hosts", "--max-train-iters", "300"]
    learner = start_train(
        [*common, "--node-id", "0", "--address", "10.77.0.1", "--ports", "50515", *learner_only],
        tmp_path,
        host_a,
    )
    evaluator = start_train(
        [*common, "--node-id", "1", "--address", "10.77.0.1", "--ports", "50516", "--attach-to", learner_addr],
        tmp_path,
        host_a,
    )
    collector = start_train(
        [
            *common,
            "--node-id",
            "2",
            "--address",
            "10.77.0.2",
            "--ports",
            "50517",
            "--attach-to",
            f"{learner_addr},{evaluator_addr}",
        ],
        tmp_path,
        host_b,
    )
    try:
        _, err = learner.communicate(timeout=240)
        assert learner.returncode == 0, err
        for node in (evaluator, collector):
            _, node_err = node.communicate(timeout=60)
            assert node.returncode == 0, node_err
    finally:
        for proc in (learner, evaluator, collector):
            if proc.poll() is None:
                proc.kill()
    run = tmp_path / "runs" / "two_hosts"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "max_train_iters"
    assert summary["train_iters"] > 300 and summary["env_steps"] > 0  # data crossed from host B to host A
    assert len((run / "metrics.csv").read_text().splitlines()) >= 3  # evaluations crossed within host A
