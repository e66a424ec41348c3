"""Evaluation beside training: DI-engine's interaction_evaluator in a child process, on the core the
single-threaded learner leaves idle, instead of in the training loop (benchmarks/NOTES.md).

At every evaluation point (interaction_evaluator's own rule: the first iteration, then every `eval_freq` train
iterations) the training process sends the child a copy of the weights and carries on; the child scores them on
its own evaluator envs with interaction_evaluator. The result is acted on (metrics.csv, best.pth.tar, the stop rule)
in the first iteration that starts `dqnkit.eval_lag` or more train iterations after the weights it scored, waiting
for the child if it is late, so that a run stays reproducible: the same seed gives the same metrics and stops at the
same iteration. A stop therefore comes that much after the evaluation that earned it; best.pth.tar holds the
evaluated weights.

The child's envs draw their episode seeds from the child's own numpy generator, so evaluation no longer shares
the global numpy stream with the collector's epsilon-greedy draws (in one process it did: changing how often or
how long evaluations ran changed training).
"""

from __future__ import annotations

import contextlib
import copy
import multiprocessing
import signal
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from ding.framework.context import OnlineRLContext
from ding.framework.middleware import interaction_evaluator

from dqnkit.actions import explore
from dqnkit.dingext.family import ALGORITHMS
from dqnkit.envguard import failure_frames
from dqnkit.errors import TrainingFailed
from dqnkit.quiet import mute_ding_logging
from dqnkit.train.recorder import Evaluation, failure_line

JOIN_SECONDS = 10.0  # how long close() waits for the child before killing it
EPSILON_SEED_OFFSET = 200_003  # evaluation's random actions draw from a stream apart from the episode seeds


class EpsilonEval:
    """A policy's eval mode that plays a random action instead of its greedy one with probability `epsilon` (the
    Atari protocol's 0.05; dqnkit.eval_epsilon), drawn from a generator of its own so that evaluations stay
    reproducible and apart from the env seeds' stream."""

    def __init__(self, eval_mode: Any, epsilon: float, action_count: int, seed: int) -> None:
        self.eval_mode = eval_mode
        self.epsilon = epsilon
        self.action_count = action_count
        self.rng = np.random.default_rng(seed)

    def forward(self, obs: Any, **kwargs: Any) -> Any:
        output = self.eval_mode.forward(obs, **kwargs)
        for value in output.values():
            action = explore(int(value["action"]), self.epsilon, self.rng, self.action_count)
            value["action"] = torch.as_tensor(action, dtype=value["action"].dtype)
        return output

    def reset(self, *args: Any, **kwargs: Any) -> Any:
        return self.eval_mode.reset(*args, **kwargs)


def eval_policy(cfg: Any, eval_mode: Any) -> Any:
    """What interaction_evaluator plays: the eval mode itself, or with dqnkit.eval_epsilon's random actions."""
    epsilon = float(cfg.dqnkit.eval_epsilon)
    if epsilon == 0:
        return eval_mode
    return EpsilonEval(eval_mode, epsilon, int(cfg.policy.model.action_shape), int(cfg.seed) + EPSILON_SEED_OFFSET)


def _serve(cfg: Any, make_env: Callable[[], Any], seed_env: Callable[[Any], None], conn: Any, parent_conn: Any) -> None:
    """The child: evaluate each weight set received, send back interaction_evaluator's statistics."""
    parent_conn.close()  # inherited: while this process held it, the training process's death would go unnoticed
    # The training process handles signals (a terminal's Ctrl-C reaches the whole group) and closes the pipe.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, signal.SIG_IGN)
    mute_ding_logging()
    torch.set_num_threads(1)
    env = make_env()
    try:
        eval_cfg = copy.deepcopy(cfg)
        eval_cfg.env.stop_value = float("inf")  # the training process applies the stop rule
        eval_cfg.policy.cuda = False  # a DQN this size evaluates fast enough on one core
        model, policy = ALGORITHMS[eval_cfg.policy.type].build(eval_cfg.policy, enable_field=["eval"])
        evaluate = interaction_evaluator(eval_cfg, eval_policy(cfg, policy.eval_mode), env)
        seed_env(env)  # after interaction_evaluator, which seeds its envs itself
        env.launch()
        while True:
            try:
                request = conn.recv()
            except EOFError:
                return
            if request is None:
                return
            model.load_state_dict(request["model"])
            ctx = OnlineRLContext()
            ctx.train_iter, ctx.env_step = request["train_iter"], request["env_step"]
            try:
                evaluate(ctx)
            except Exception as e:  # an env that raised: the training process stops with its message
                with contextlib.suppress(OSError):  # the training process stopped first (its own env raised too)
                    conn.send({"error": failure_line(e), "frames": failure_frames(e)})
                return
            conn.send(
                {
                    "mean": float(ctx.eval_value),
                    "std": float(ctx.eval_value_std),
                    "min": float(ctx.eval_value_min),
                    "max": float(ctx.eval_value_max),
                }
            )
    finally:
        env.close()


class BackgroundEvaluation:
    """Middleware in interaction_evaluator's place for a run in one process. `current` is the evaluation to act on
    in this iteration (None in most): statistics, the counters it was made at and the weights it scored."""

    def __init__(self, cfg: Any, make_env: Callable[[], Any], seed_env: Callable[[Any], None]) -> None:
        self.model: Any = None  # the network whose weights are evaluated: set once the training process built it
        self._eval_freq = int(cfg.policy.eval.evaluator.eval_freq)
        self._lag = int(cfg.dqnkit.eval_lag)  # resolved by validate.check_run_config
        self._pending: deque[dict[str, Any]] = deque()
        self.current: Evaluation | None = None
        # Forked before the training process starts threads, builds its model or its envs: the child gets the
        # imported DI-engine and torch for free (a fresh interpreter would spend seconds importing them again).
        context = multiprocessing.get_context("fork")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(cfg, make_env, seed_env, child_conn, self._conn), name="dqnkit-evaluator"
        )  # not a daemon: it may start env workers of its own (env manager "subprocess"); close() ends it
        self._process.start()
        child_conn.close()

    def __call__(self, ctx: Any) -> None:
        self.current = None
        if self._pending and ctx.train_iter >= self._pending[0]["train_iter"] + self._lag:
            self.current = self._receive(self._pending.popleft())
            self.current.put_in(ctx)
        if ctx.last_eval_iter == -1 or ctx.train_iter - ctx.last_eval_iter >= self._eval_freq:
            request = {
                "train_iter": int(ctx.train_iter),
                "env_step": int(ctx.env_step),
                "model": {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()},
            }
            self._send(request)
            self._pending.append(request)
            ctx.last_eval_iter = ctx.train_iter

    def drain(self) -> list[Evaluation]:
        """The evaluations still under way, once finished: a run that ends at a step limit keeps its last one."""
        done = []
        while self._pending:
            done.append(self._receive(self._pending.popleft()))
        return done

    def _send(self, request: dict[str, Any]) -> None:
        try:
            self._conn.send(request)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise TrainingFailed(f"the evaluator process exited (code {self._process.exitcode})") from e

    def _receive(self, request: dict[str, Any]) -> Evaluation:
        try:
            result = self._conn.recv()
        except (EOFError, ConnectionResetError) as e:
            self._process.join(timeout=1)
            raise TrainingFailed(f"the evaluator process exited (code {self._process.exitcode})") from e
        if "error" in result:
            raise TrainingFailed(f"evaluation failed: {result['error']}", details=result.get("frames"))
        return Evaluation(request["env_step"], request["train_iter"], **result, model=request["model"])

    def close(self) -> None:
        """Stop the child: it finishes the evaluation it is on, unless that takes longer than JOIN_SECONDS."""
        with contextlib.suppress(OSError):  # already gone
            self._conn.send(None)
        self._conn.close()
        self._process.join(timeout=JOIN_SECONDS)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
