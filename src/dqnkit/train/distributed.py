"""The middleware a distributed run adds to DI-engine's pipeline: `ding.framework.Parallel` over nng.

Roles (dqnkit.nodes): node 0 is the learner, node 1 the evaluator, every other node a collector. DI-engine's
`ContextExchanger` carries trajectories and counters, `ModelExchanger` the learner's weights. Starting and
supervising the nodes is dqnkit.train.launch.

DI-engine 0.5.3 defects handled here (each named where it is handled): the exchangers' waits (forever on the learner,
60 s then carry on elsewhere) and the learner merging a payload still landing, checkpoints written by two nodes, and
evaluation results that never reach the learner.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ding.framework import task
from ding.framework.middleware import ContextExchanger

from dqnkit.errors import TrainingFailed
from dqnkit.nodes import Node
from dqnkit.train.recorder import Evaluation

EVALUATION_EVENT = "dqnkit_evaluation"
NODE_SEED_STRIDE = 1_000  # collector k explores with seed + k * stride: collectors must not replay each other
CARRY_ON_SECONDS = 10.0  # a collector waiting this long for a live learner's news collects again


class PeerLost(TrainingFailed):
    """A node lost the nodes it depends on: they died, or the network between them did."""


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


class EndingContextExchanger(ContextExchanger):
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

    _state: dict[str, Any]  # DI-engine's: what arrived since the last merge

    def __init__(self, heartbeat: LearnerHeartbeat, start_env_step: int = 0) -> None:
        self._lock = threading.Lock()  # before the parent subscribes `put` to the bus
        self._heartbeat = heartbeat
        self._is_learner = task.has_role(task.role.LEARNER)
        self._is_collector = task.has_role(task.role.COLLECTOR)
        super().__init__(skip_n_iter=1)
        if start_env_step and self._is_collector:
            # On --resume the collector's epsilon schedule continues from the run's env step; the exchanger sends
            # increments, so its baseline moves too (the learner's counter is restored from the checkpoint).
            task.ctx.env_step = start_env_step
            self._local_state["env_step"] = start_env_step

    def put(self, payload: Any) -> None:
        with self._lock:
            super().put(payload)

    def _has_news(self) -> bool:
        if self._is_learner:
            return "trajectories" in self._state or "episodes" in self._state
        return bool(self._state)

    def _wait_for_news(self, ctx: Any) -> bool:
        """Wait as described above; False when the run finished meanwhile."""
        heartbeat = self._heartbeat
        started = time.monotonic()
        while not self._has_news():
            if task.finish:
                return False
            waited = time.monotonic() - started
            if self._is_learner and waited > heartbeat.timeout:
                raise PeerLost(f"no data from any collector for {heartbeat.timeout:.0f} s")
            if not self._is_learner and heartbeat.learner_silent_for() > heartbeat.timeout:
                raise PeerLost(f"the learner has been silent for {heartbeat.timeout:.0f} s")
            if not self._is_learner and waited > CARRY_ON_SECONDS:
                break
            time.sleep(0.001)
        return True

    def merge(self, ctx: Any) -> None:
        must_wait = self._is_learner or ctx.total_step >= self._skip_n_iter
        if must_wait and not self._wait_for_news(ctx):
            return
        with self._lock:
            state, self._state = self._state, {}
        for key, value in state.items():  # as DI-engine's merge: counters arrive as increments, the rest as is
            if not self._is_collector and key.startswith("increment_"):
                name = key.removeprefix("increment_")
                setattr(ctx, name, getattr(ctx, name) + value)
            else:
                setattr(ctx, key, value)


def evaluation_record(ctx: Any, model: Any) -> Evaluation | None:
    """The evaluation interaction_evaluator made in this iteration (None if it made none), with a copy of the
    weights it scored, so that a checkpoint saved for it holds that network and not the one trained further by
    the learner later in the iteration."""
    if ctx.eval_value == -float("inf"):
        return None
    return Evaluation(
        env_step=int(ctx.env_step),
        train_iter=int(ctx.train_iter),
        mean=float(ctx.eval_value),
        std=float(ctx.eval_value_std),
        min=float(ctx.eval_value_min),
        max=float(ctx.eval_value_max),
        model={k: v.detach().clone() for k, v in model.state_dict().items()},
    )


def send_evaluations(model: Any) -> Callable[[Any], None]:
    """Evaluator side: DI-engine keeps eval results on the evaluator. Send each one to the learner with the weights
    that were evaluated, so that best.pth.tar holds the network that earned its score."""

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
        self._queue: deque[Evaluation] = deque()
        self._env_step_at: dict[int, int] = {}
        self.current: Evaluation | None = None
        task.on(EVALUATION_EVENT, self._queue.append)

    def __call__(self, ctx: Any) -> None:
        self._env_step_at[int(ctx.train_iter)] = int(ctx.env_step)
        self.current = self._queue.popleft() if self._queue else None
        if self.current is None:
            return
        evaluated_iter = self.current.train_iter
        self.current.env_step = self._env_step_at.get(evaluated_iter, self.current.env_step)
        self._env_step_at = {i: s for i, s in self._env_step_at.items() if i >= evaluated_iter}
        self.current.put_in(ctx)

    def drain(self) -> list[Evaluation]:
        """Nothing: an evaluation still under way on the evaluator node is not waited for."""
        return []


def announce_finish(heartbeat: LearnerHeartbeat) -> None:
    """Tell every node that the run is over, and give nng a moment to deliver it: DI-engine's task.stop() emits the
    same event from a thread pool and closes the socket 30 ms later, which can drop it."""
    heartbeat.stop()
    task.emit("finish", True, only_remote=True)
    task.sync()
    time.sleep(0.3)
