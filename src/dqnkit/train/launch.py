"""Starting the nodes of a distributed run: one node of a multi-host run in this process (`--node-id`), or all of
them on this machine with a supervisor (`--workers N`) that starts them, forwards Ctrl-C / SIGTERM once, and stops
the run when a node dies. Each node is one `Parallel.runner(n_parallel_workers=1, ...)` with explicit listen and
attach addresses, so a node started here and one started by hand on another host run the same code.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import wait as wait_for_sentinels
from typing import Any

import setproctitle
from ding.framework import Parallel

from dqnkit.errors import run_command
from dqnkit.nodes import Node, local_mesh, tcp_address
from dqnkit.train.distributed import PeerLost
from dqnkit.train.pipeline import run_planned
from dqnkit.train.plan import RunPlan, TrainOptions, plan_run

STOP_GRACE_SECONDS = 30.0  # after the learner ends, how long the other nodes get to notice before SIGTERM


def run_node(options: TrainOptions, plan: RunPlan, node: Node) -> int:
    """Join the nng bus as `node` through DI-engine's Parallel runner and train in that role; returns the exit code."""
    host, port = tcp_address(node.listen)
    exit_code: list[int] = []

    def main() -> None:
        exit_code.append(run_planned(options, plan, node))

    Parallel.runner(
        n_parallel_workers=1,
        protocol="tcp",
        address=host,
        ports=[port],
        node_ids=[node.node_id],
        topology="alone",  # connect to exactly the attach_to list
        attach_to=list(node.attach_to),
    )(main)
    return exit_code[0] if exit_code else 1


def train_node(options: TrainOptions, node: Node) -> int:
    """One node started by hand (e.g. one per host): only the learner plans and writes a run folder."""
    return run_node(options, plan_run(options, writes_run_folder=node.role == "learner"), node)


def _watch_parent(parent_pid: int) -> None:
    """A locally started node stops when its supervisor is gone (even after kill -9): no orphans."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="dqnkit-parent-watch", daemon=True).start()


def _peer_died(_signum: int, _frame: Any) -> None:
    raise PeerLost("another node of this run died")


def _node_process(options: TrainOptions, plan: RunPlan, node: Node, parent_pid: int) -> None:
    setproctitle.setproctitle(f"dqn-train: {node.name}")  # what ps and top show for this process
    # Ctrl-C at the terminal reaches the supervisor alone; it forwards one signal to each node.
    os.setpgid(0, 0)
    if node.role == "learner":
        signal.signal(signal.SIGUSR1, _peer_died)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    _watch_parent(parent_pid)
    run_command(f"dqn-train ({node.name})", lambda: run_node(options, plan, node))


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def launch_local(options: TrainOptions, workers: int) -> int:
    """Start `workers` nodes on this machine and supervise them; returns the run's exit code."""
    nodes = local_mesh(workers)
    plan = plan_run(options)
    if not options.quiet:
        layout = ", ".join(f"{n.node_id} {n.role}" for n in nodes)
        print(f"dqnkit: {workers} worker processes on DI-engine's Parallel runtime (nodes: {layout})", file=sys.stderr)
    spawn = multiprocessing.get_context("spawn")
    # Signals stay blocked until each node has its own process group: a Ctrl-C during start-up must not print a
    # KeyboardInterrupt traceback from a half-imported child (the mask is inherited across fork and exec).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    processes: dict[Node, Any] = {}
    try:
        for node in nodes:
            process = spawn.Process(target=_node_process, args=(options, plan, node, os.getpid()), name=node.name)
            process.start()
            processes[node] = process
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    return _supervise(processes)


def _end(processes: Any) -> None:
    """SIGTERM to every process still running, SIGKILL to any still there 5 s later."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5.0)
        if process.is_alive():
            process.kill()
            process.join()


def _supervise(processes: dict[Node, Any]) -> int:
    learner = next(node for node in processes if node.role == "learner")
    received: list[int] = []
    signalled: set[Node] = set()
    exited: set[Node] = set()
    lost: list[str] = []
    stop_deadline: float | None = None

    def signal_nodes(signum: int) -> None:
        for node, process in processes.items():
            if process.is_alive() and node not in signalled:
                signalled.add(node)
                os.kill(process.pid, signum)

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signum)
        signal_nodes(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while any(p.is_alive() for p in processes.values()):
            wait_for_sentinels([p.sentinel for p in processes.values() if p.is_alive()], timeout=0.5)
            for node, process in processes.items():
                if process.is_alive() or node in exited:
                    continue
                exited.add(node)
                if node is learner:
                    stop_deadline = time.monotonic() + STOP_GRACE_SECONDS
                elif process.exitcode != 0 and not received and stop_deadline is None:
                    lost.append(f"{node.name} died ({_describe_exit(process.exitcode)})")
                    if processes[learner].is_alive():
                        os.kill(processes[learner].pid, signal.SIGUSR1)  # the learner stops as "failed"
                    stop_deadline = time.monotonic() + STOP_GRACE_SECONDS
            if stop_deadline is not None and time.monotonic() > stop_deadline:
                _end(processes.values())
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    learner_code = processes[learner].exitcode
    if lost:
        print(f"dqn-train: error: {lost[0]}; the run stopped", file=sys.stderr)
        return 1
    if learner_code is None or learner_code < 0:
        print(f"dqn-train: error: the learner ({_describe_exit(learner_code)}) did not finish", file=sys.stderr)
        return 1
    return int(learner_code)
