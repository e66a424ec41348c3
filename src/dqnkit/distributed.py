"""Training across processes on DI-engine's own distributed runtime: `ding.framework.Parallel` over nng.

Roles, as in DI-engine's ding/example/dqn.py: node 0 is the learner, node 1 the evaluator, every other node a
collector. `ContextExchanger` carries trajectories and counters, `ModelExchanger` the learner's weights. Each node
is one `Parallel.runner(n_parallel_workers=1, ...)` with explicit listen and attach addresses, so a node started by
`--workers N` on this machine and one started by hand on another host (`--role ... --attach-to ...`) run the same
code. `--workers N` adds a supervisor: it starts the nodes, forwards Ctrl-C / SIGTERM once, and stops the run when
a node dies.

DI-engine 0.5.3 defects handled here (each named where it is handled): the exchangers' waits (forever on the learner,
60 s then carry on elsewhere) and the learner merging a payload still landing, n-step returns applied on both learner
and collectors, checkpoints written by two nodes, and evaluation results that never reach the learner.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_for_sentinels
from typing import TYPE_CHECKING, Any

from dqnkit.errors import TrainingFailed, UserError

if TYPE_CHECKING:
    from dqnkit.pipeline import RunPlan, TrainOptions

ROLES = ("learner", "evaluator", "collector")
EVALUATION_EVENT = "dqnkit_evaluation"
NODE_SEED_STRIDE = 1_000  # collector k explores with seed + k * stride: collectors must not replay each other
STOP_GRACE_SECONDS = 30.0  # after the learner ends, how long the other nodes get to notice before SIGTERM
CARRY_ON_SECONDS = 10.0  # a collector waiting this long for a live learner's news collects again


class PeerLost(TrainingFailed):
    """A node lost the nodes it depends on: they died, or the network between them did."""


@dataclass(frozen=True)
class Node:
    node_id: int
    role: str
    listen: str  # tcp://HOST:PORT
    attach_to: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.role} node {self.node_id}"


def default_role(node_id: int) -> str:
    return ROLES[min(node_id, 2)]


def tcp_address(text: str) -> tuple[str, int]:
    """'tcp://HOST:PORT' -> (HOST, PORT), or a UserError naming the bad address."""
    host, sep, port = text.removeprefix("tcp://").rpartition(":")
    if not text.startswith("tcp://") or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"bad node address {text!r}: expected tcp://HOST:PORT, e.g. tcp://10.0.0.4:50515")
    return host, int(port)


def _free_ports(count: int, host: str) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def local_mesh(workers: int, host: str = "127.0.0.1") -> list[Node]:
    """N nodes on this machine, fully connected (DI-engine's mesh topology): each dials every earlier node."""
    if workers < 3:
        raise UserError(f"--workers {workers}: needs at least 3 (a learner, an evaluator and a collector)")
    addresses = [f"tcp://{host}:{port}" for port in _free_ports(workers, host)]
    return [Node(i, default_role(i), addresses[i], tuple(addresses[:i])) for i in range(workers)]


# ---------------------------------------------------------------------------------------------------------------
# Middleware pieces that DI-engine's pipeline needs in parallel mode.


class LearnerHeartbeat:
    """The learner says it is alive once a second; the other nodes listen.

    A node must not send before its link to the learner is up: nng's bus drops what it cannot deliver, and
    DI-engine's exchangers then wait on each other (the learner for the lost trajectories, the collector for the
    learner's next train_iter). Hearing the first beat proves the link works both ways. Silence for longer than
    `timeout` afterwards means the learner is gone.
    """

    EVENT = "dqnkit_learner_alive"

    def __init__(self, is_learner: bool, timeout: float) -> None:
        from ding.framework import task

        self.is_learner = is_learner
        self.timeout = timeout
        self.last_heard: float | None = None
        self._stopped = threading.Event()
        self._router = task.router
        if not is_learner:
            self._router.on(self.EVENT, self._heard)

    def start(self, node: Node) -> None:
        """Learner: start beating, once every handler is registered (what arrives before is dropped). Other
        nodes: wait for the first beat."""
        if self.is_learner:
            threading.Thread(target=self._beat, name="dqnkit-heartbeat", daemon=True).start()
            return
        deadline = time.monotonic() + self.timeout
        while self.last_heard is None:
            if time.monotonic() > deadline:
                raise PeerLost(
                    f"{node.name} heard nothing from the learner within {self.timeout:.0f} s "
                    f"(attached to {', '.join(node.attach_to)}): is it running, and reachable from here?"
                )
            time.sleep(0.05)

    def _heard(self, *_args: Any) -> None:
        self.last_heard = time.monotonic()

    def _beat(self) -> None:
        while not self._stopped.is_set():
            try:
                self._router.emit(self.EVENT)
            except Exception:  # the router is shutting down with the process
                return
            self._stopped.wait(1.0)

    def stop(self) -> None:
        self._stopped.set()

    def learner_silent_for(self) -> float:
        return 0.0 if self.last_heard is None else time.monotonic() - self.last_heard


def context_exchanger(heartbeat: LearnerHeartbeat, start_env_step: int = 0) -> Any:
    """DI-engine's ContextExchanger, with waits that end.

    Its merge waits forever for trajectories on the learner (a run whose collectors died hangs) and 60 s on the
    other nodes before carrying on without news (a collector whose learner died keeps collecting for nobody). Here
    the learner gives up after the heartbeat's timeout without trajectories, the other nodes when the learner has
    been silent that long, and every wait ends as soon as the run finishes. A collector still carries on after
    a while without news from a live learner, as DI-engine's does: a message the bus dropped must not stall both.

    DI-engine's exchanger also races: the bus thread puts a collector's payload key by key while the learner's
    thread waits for any key, so the learner could go on with the counters of a payload whose trajectories had not
    landed yet (DI-engine's data_pusher then fails: "Either ctx.trajectories or ctx.episodes should be not None";
    seen on a loaded machine), and merge could read the state while a payload was landing in it. Here a payload
    lands whole, the learner waits for trajectories, and merge takes the state in one swap. DI-engine's merge is
    no longer called, so its own wait of up to 60 s no longer follows a collector's CARRY_ON_SECONDS.
    """
    from ding.framework import task
    from ding.framework.middleware import ContextExchanger

    is_learner = task.has_role(task.role.LEARNER)
    is_collector = task.has_role(task.role.COLLECTOR)

    class _Exchanger(ContextExchanger):
        _state: dict[str, Any]  # DI-engine's: what arrived since the last merge

        def __init__(self, skip_n_iter: int) -> None:
            self._lock = threading.Lock()  # before the parent subscribes `put` to the bus
            super().__init__(skip_n_iter=skip_n_iter)

        def put(self, payload: Any) -> None:
            with self._lock:
                super().put(payload)

        def _has_news(self) -> bool:
            if is_learner:
                return "trajectories" in self._state or "episodes" in self._state
            return bool(self._state)

        def merge(self, ctx: Any) -> None:
            must_wait = is_learner or ctx.total_step >= self._skip_n_iter
            started = time.monotonic()
            while must_wait and not self._has_news():
                if task.finish:
                    return
                waited = time.monotonic() - started
                if is_learner and waited > heartbeat.timeout:
                    raise PeerLost(f"no data from any collector for {heartbeat.timeout:.0f} s")
                if not is_learner and heartbeat.learner_silent_for() > heartbeat.timeout:
                    raise PeerLost(f"the learner has been silent for {heartbeat.timeout:.0f} s")
                if not is_learner and waited > CARRY_ON_SECONDS:
                    break
                time.sleep(0.001)
            with self._lock:
                state, self._state = self._state, {}
            for key, value in state.items():  # as DI-engine's merge: counters arrive as increments, the rest as is
                if not is_collector and key.startswith("increment_"):
                    name = key.removeprefix("increment_")
                    setattr(ctx, name, getattr(ctx, name) + value)
                else:
                    setattr(ctx, key, value)

    exchanger = _Exchanger(skip_n_iter=1)
    if start_env_step and is_collector:
        # On --resume the collector's epsilon schedule continues from the run's env step; the exchanger sends
        # increments, so its baseline moves too (the learner's counter is restored from the checkpoint).
        task.ctx.env_step = start_env_step
        exchanger._local_state["env_step"] = start_env_step
    return exchanger


def evaluation_record(ctx: Any, model: Any) -> dict[str, Any] | None:
    """The evaluation interaction_evaluator made in this iteration (None if it made none): its statistics, the
    counters it ran at and a copy of the weights it scored, so that a checkpoint saved for it holds that network
    and not the one trained further by the learner later in the iteration."""
    if ctx.eval_value == -float("inf"):
        return None
    return {
        "env_step": int(ctx.env_step),
        "train_iter": int(ctx.train_iter),
        "mean": float(ctx.eval_value),
        "std": float(ctx.eval_value_std),
        "min": float(ctx.eval_value_min),
        "max": float(ctx.eval_value_max),
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }


def send_evaluations(model: Any) -> Callable[[Any], None]:
    """Evaluator side: DI-engine keeps eval results on the evaluator. Send each one to the learner with the weights
    that were evaluated, so that best.pth.tar holds the network that earned its score."""
    from ding.framework import task

    def _send(ctx: Any) -> None:
        record = evaluation_record(ctx, model)
        if record is not None:
            task.emit(EVALUATION_EVENT, record, only_remote=True)

    return _send


class RemoteEvaluations:
    """Learner-side middleware: puts the next evaluation received from the evaluator node into the learner's ctx
    (for online_logger's TensorBoard curve) and keeps it for the recorder. Each is dated with the learner's env
    step at the train iteration it evaluated: the evaluator's own count misses what collectors sent before its
    links were up."""

    def __init__(self) -> None:
        from ding.framework import task

        self._queue: deque[dict[str, Any]] = deque()
        self._env_step_at: dict[int, int] = {}
        self.current: dict[str, Any] | None = None
        task.on(EVALUATION_EVENT, self._queue.append)

    def __call__(self, ctx: Any) -> None:
        self._env_step_at[int(ctx.train_iter)] = int(ctx.env_step)
        self.current = self._queue.popleft() if self._queue else None
        if self.current is None:
            return
        evaluated_iter = self.current["train_iter"]
        self.current["env_step"] = self._env_step_at.get(evaluated_iter, self.current["env_step"])
        self._env_step_at = {i: s for i, s in self._env_step_at.items() if i >= evaluated_iter}
        ctx.eval_value = self.current["mean"]
        ctx.eval_value_std, ctx.eval_value_min, ctx.eval_value_max = (self.current[k] for k in ("std", "min", "max"))


def announce_finish(heartbeat: LearnerHeartbeat) -> None:
    """Tell every node that the run is over, and give nng a moment to deliver it: DI-engine's task.stop() emits the
    same event from a thread pool and closes the socket 30 ms later, which can drop it."""
    from ding.framework import task

    heartbeat.stop()
    task.emit("finish", True, only_remote=True)
    task.sync()
    time.sleep(0.3)


# ---------------------------------------------------------------------------------------------------------------
# Running one node, and supervising N of them on this machine.


def run_node(options: TrainOptions, plan: RunPlan, node: Node) -> int:
    """Join the nng bus as `node` through DI-engine's Parallel runner and train in that role; returns the exit code."""
    from dqnkit.pipeline import run_plan
    from dqnkit.quiet import import_ding_quietly

    import_ding_quietly()
    from ding.framework import Parallel

    host, port = tcp_address(node.listen)
    exit_code: list[int] = []

    def main() -> None:
        exit_code.append(run_plan(options, plan, node))

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
    from dqnkit.pipeline import plan_run

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
    import setproctitle

    from dqnkit.cli.common import run

    setproctitle.setproctitle(f"dqn-train: {node.name}")  # what ps and top show for this process
    # Ctrl-C at the terminal reaches the supervisor alone; it forwards one signal to each node.
    os.setpgid(0, 0)
    if node.role == "learner":
        signal.signal(signal.SIGUSR1, _peer_died)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    _watch_parent(parent_pid)
    run(f"dqn-train ({node.name})", lambda: run_node(options, plan, node))


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def launch_local(options: TrainOptions, workers: int) -> int:
    """Start `workers` nodes on this machine and supervise them; returns the run's exit code."""
    from dqnkit.pipeline import plan_run

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
