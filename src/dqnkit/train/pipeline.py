"""Training: a planned run through DI-engine's own middleware pipeline, into dqnkit's run folder.

Order of middleware (as in DI-engine's dizoo LunarLander example): interaction_evaluator, eps_greedy_handler,
StepCollector, nstep_reward_enhancer (dqnkit's corrected copy, dingext.nstep), data_pusher, OffPolicyLearner,
online_logger, then dqnkit's RunRecorder (checkpoints, metrics.csv, progress) in place of CkptSaver, then
termination_checker. In a single process interaction_evaluator runs in a child process beside training
(background_eval); in a distributed run each node adds only the parts of its role.

`run_planned` reads top to bottom: set up (run folder, seeds, networks), the evaluator, collector and learner
parts, run the task, finish (final checkpoint, summary) on every kind of stop.
"""

from __future__ import annotations

import copy
import gc
import math
import sys
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from ding.framework import ding_init, task
from ding.framework.context import OnlineRLContext
from ding.framework.middleware import (
    ModelExchanger,
    OffPolicyLearner,
    StepCollector,
    data_pusher,
    eps_greedy_handler,
    interaction_evaluator,
    online_logger,
    termination_checker,
)
from ding.utils import DistributedWriter, set_pkg_seed

from dqnkit import rngstate, runfolder
from dqnkit.config import to_plain
from dqnkit.dingext.envmanager import MANAGERS
from dqnkit.dingext.family import ALGORITHMS
from dqnkit.dingext.frames import FrameReplayBuffer, PackedFrameReplayBuffer
from dqnkit.dingext.nstep import nstep_reward_enhancer
from dqnkit.dingext.replay import ArrayReplayBuffer, PrioritizedReplayBuffer
from dqnkit.dingext.speedups import fast_batch_collation, fast_tree_construction
from dqnkit.envguard import failure_frames
from dqnkit.envs import EnvRef, make_ding_env, takes_frames
from dqnkit.errors import TrainingFailed, UserError, interrupting_signal
from dqnkit.nodes import Node
from dqnkit.progress import ProgressLine
from dqnkit.quiet import mute_ding_logging
from dqnkit.signals import InterruptSignals
from dqnkit.train import distributed
from dqnkit.train.background_eval import BackgroundEvaluation, eval_policy
from dqnkit.train.plan import RunPlan, TrainOptions, plan_run
from dqnkit.train.processes import (
    close_env,
    denormals_flushed,
    late_signals_ignored,
    worker_signals,
)
from dqnkit.train.recorder import RunRecorder, failure_line, print_summary

EVAL_SEED_OFFSET = 100_003  # evaluation episodes draw seeds apart from the collector's
COLLECTOR_STREAM = 1  # names the collector's numpy stream within the run seed's SeedSequence


@dataclass(frozen=True)
class Roles:
    """What this process does: every role in a single process (node None), one role on a node."""

    node: Node | None

    @property
    def learns(self) -> bool:
        return self.node is None or self.node.role == "learner"

    @property
    def collects(self) -> bool:
        return self.node is None or self.node.role == "collector"

    @property
    def evaluates(self) -> bool:
        return self.node is None or self.node.role == "evaluator"

    @property
    def seed_offset(self) -> int:
        """Collectors of a distributed run explore with seeds of their own; a single process uses cfg.seed."""
        return self.node.node_id * distributed.NODE_SEED_STRIDE if self.node is not None else 0


@dataclass
class Outcome:
    """How the task ended."""

    stop_reason: str = "finished"
    signum: int | None = None
    failure: Exception | None = None


@dataclass
class Parts:
    """What a run builds before its task runs, and closes when it ends."""

    background: BackgroundEvaluation | None = None
    collector_env: Any = None
    evaluator_env: Any = None
    heartbeat: distributed.LearnerHeartbeat | None = None
    recorder: RunRecorder | None = None

    def close(self) -> None:
        if self.background is not None:
            self.background.close()
        for manager, name in ((self.collector_env, "collector"), (self.evaluator_env, "evaluator")):
            if manager is not None:
                close_env(manager, name)


def train(options: TrainOptions) -> int:
    """Train in this process: every role of DI-engine's pipeline in one task. Returns the exit code."""
    return run_planned(options, plan_run(options))


# --- set up ------------------------------------------------------------------------------------------------------


def env_manager(cfg: Any, count: int, training: bool = True) -> Any:
    """`count` envs of the run's env id under the configured DI-engine env manager: the collector's (training) or
    the evaluator's (an Atari game played by the evaluation protocol)."""
    env_fn = [partial(make_ding_env, EnvRef.of(to_plain(cfg.env)), training) for _ in range(count)]
    return MANAGERS[cfg.env.manager.type](env_fn=env_fn, cfg=cfg.env.manager)


def seed_evaluator_env(cfg: Any, manager: Any) -> None:
    """interaction_evaluator seeds its envs with dynamic_seed=False: every evaluation replays the same
    evaluator_env_num start states, so "best" and the stop rule are tuned to a handful of episodes. Fresh,
    reproducible seeds per episode make each evaluation an honest estimate (benchmarks/NOTES.md)."""
    manager.seed(cfg.seed + EVAL_SEED_OFFSET, dynamic_seed=bool(cfg.dqnkit.fresh_eval_episodes))


def _announce(plan: RunPlan, node: Node | None) -> None:
    cfg = plan.cfg
    if node is not None and node.role != "learner":
        print(f"dqnkit: {node.name} on {node.listen}, attached to {', '.join(node.attach_to) or '-'}", file=sys.stderr)
        return
    if plan.resume_state is not None and plan.resume_from is not None:
        what = (
            f"resuming {plan.run_dir} from {plan.resume_from.name} at env step "
            f"{plan.resume_state['env_step']}, train iter {plan.resume_state['train_iter']}"
        )
    else:
        what = f"training into {plan.run_dir}"
    where = f", {node.name} on {node.listen}" if node is not None else ""
    print(
        f"dqnkit: {what} ({cfg.env.env_id}, seed {cfg.seed}, {'cuda' if cfg.policy.cuda else 'cpu'}{where})",
        file=sys.stderr,
    )


def _restore(plan: RunPlan, policy: Any, ctx: Any) -> None:
    """--resume: the learner's weights, target network, optimizer and counters (the epsilon schedule follows)."""
    state = plan.resume_state
    assert state is not None
    try:
        policy.learn_mode.load_state_dict({k: state[k] for k in ("model", "target_model", "optimizer")})
    except (RuntimeError, KeyError) as e:
        raise UserError(f"--resume {plan.resume_from}: weights do not fit the config's model ({e})") from e
    ctx.env_step = int(state["env_step"])
    ctx.train_iter = int(state["train_iter"])
    ctx.last_eval_iter = int(state.get("last_eval_iter", -1))


def _configure_adam(optimizer: Any, eps: float) -> None:
    """torch's fused CPU Adam kernel: one call for all parameters instead of several small ops per tensor
    (benchmarks/NOTES.md); and `policy.learn.adam_eps`. DQNPolicy builds its Adam with neither."""
    for group in optimizer.param_groups:
        group["fused"] = True
        group["eps"] = eps


def _make_recorder(plan: RunPlan, policy: Any, progress: ProgressLine) -> RunRecorder:
    if plan.resume_state is not None:
        _restore(plan, policy, task.ctx)
    # after _restore: loading an optimizer state replaces its param_groups
    _configure_adam(policy._optimizer, float(plan.cfg.policy.learn.adam_eps))
    return RunRecorder(plan, policy, progress, request_stop=lambda: setattr(task, "finish", True))


def _join_nodes(parts: Parts, plan: RunPlan, roles: Roles, model: Any) -> None:
    """A node of a distributed run: its role, the heartbeat, and DI-engine's exchangers."""
    assert roles.node is not None
    cfg = plan.cfg
    task.add_role(getattr(task.role, roles.node.role.upper()))
    parts.heartbeat = distributed.LearnerHeartbeat(roles.learns, float(cfg.dqnkit.worker_timeout))
    resume = plan.resume_state
    task.use(distributed.EndingContextExchanger(parts.heartbeat, int(resume["env_step"]) if resume else 0))
    task.use(ModelExchanger(model))


# --- the evaluator, collector and learner parts -----------------------------------------------------------------


def _use_evaluator(parts: Parts, cfg: Any, policy: Any, model: Any) -> None:
    if parts.background is not None:  # interaction_evaluator, in the child process
        parts.background.model = model
        task.use(parts.background)
        if parts.recorder is not None:
            parts.recorder.evaluations = parts.background
    elif parts.evaluator_env is not None:  # an evaluator node of a distributed run
        # The recorder applies the stop rule; the evaluator gets a copy that never stops by itself.
        eval_cfg = copy.deepcopy(cfg)
        eval_cfg.env.stop_value = math.inf
        evaluator = interaction_evaluator(eval_cfg, eval_policy(cfg, policy.eval_mode), parts.evaluator_env)
        task.use(_skip_repeated_evaluation(evaluator))
        seed_evaluator_env(cfg, parts.evaluator_env)
        task.use(distributed.send_evaluations(model))


def env_seed(seed: int, resume_state: dict[str, Any] | None) -> int:
    """The collector envs' seed: the run's, or for a resumed run one drawn from the run's seed and the env step it
    resumes at, so that its episodes do not start where the first run's did."""
    if resume_state is None:
        return seed
    drawn = np.random.SeedSequence([seed, COLLECTOR_STREAM, int(resume_state["env_step"])]).generate_state(1)[0]
    return int(drawn) % 2**30


def _use_collector(parts: Parts, cfg: Any, policy: Any, seed: int) -> None:
    if parts.collector_env is None:
        return
    parts.collector_env.seed(seed)
    task.use(eps_greedy_handler(cfg))
    task.use(StepCollector(cfg, policy.collect_mode, parts.collector_env))
    # DI-engine registers it on the learner too in parallel mode: n-step returns computed twice.
    task.use(nstep_reward_enhancer(cfg))


def _replay_buffer(cfg: Any) -> Any:
    size = int(cfg.policy.other.replay_buffer.replay_buffer_size)
    if not cfg.policy.priority:
        if not takes_frames(cfg.policy.model.obs_shape):
            return ArrayReplayBuffer(size)
        return PackedFrameReplayBuffer(size) if cfg.dqnkit.compress_frames else FrameReplayBuffer(size)
    return PrioritizedReplayBuffer(size, is_weight=bool(cfg.policy.priority_IS_weight))


def _use_learner(parts: Parts, plan: RunPlan, policy: Any, node: Node | None) -> None:
    recorder = parts.recorder
    if recorder is None:
        return
    cfg = plan.cfg
    buffer = _replay_buffer(cfg)
    recorder.keep_replay(buffer, bool(cfg.dqnkit.save_replay), plan.resume_from)
    task.use(data_pusher(cfg, buffer))
    task.use(OffPolicyLearner(cfg, policy.learn_mode, buffer))
    if node is not None:
        remote = distributed.RemoteEvaluations()
        recorder.evaluations = remote
        task.use(remote)
    task.use(_guard_train_output(online_logger(train_show_freq=int(cfg.dqnkit.log_freq))))
    task.use(recorder)
    task.use(termination_checker(cfg.dqnkit.max_env_steps, cfg.dqnkit.max_train_iters))


def _skip_repeated_evaluation(evaluator: Any) -> Any:
    """interaction_evaluator evaluates again whenever train_iter has not moved since its last evaluation, which is
    every iteration until the buffer holds a batch (and the first after a resume). Its envs are seeded without
    dynamic seeds, so it replays the same episodes with the same policy: the same result, at the cost of a full
    evaluation each time."""

    def _evaluate(ctx: Any) -> Any:
        if ctx.last_eval_iter != -1 and ctx.train_iter == ctx.last_eval_iter:
            return None
        return evaluator(ctx)

    return _evaluate


def _guard_train_output(logger: Any) -> Any:
    """online_logger pops the newest output from ctx.train_output: it crashes on the empty list OffPolicyLearner
    leaves while the buffer holds less than a batch (always the case right after a resume), and the output it takes
    is missing afterwards (the recorder's mean loss; with prioritized replay, the fetcher that pops each update's
    priorities crashes on "pop from empty list"). The logger gets a copy."""

    def _log(ctx: Any) -> Any:
        outputs = ctx.train_output
        if isinstance(outputs, list):
            ctx.train_output = list(outputs) if outputs else None
        try:
            return logger(ctx)
        finally:
            ctx.train_output = outputs

    return _log


# --- run ---------------------------------------------------------------------------------------------------------


def _run_task(parts: Parts, signals: InterruptSignals, roles: Roles) -> Outcome:
    """task.run() until it stops, and why it stopped: a stop that leaves something to save is an Outcome, not an
    exception (an env worker died, an env raised, a peer was lost: keep what was learned)."""
    try:
        if parts.heartbeat is not None and roles.node is not None:
            parts.heartbeat.start(roles.node)
        # What exists now (DI-engine, torch, envs, model) lives until the run ends; unfrozen, every full garbage
        # collection rescanned it. Unfrozen in _build_and_run, so that a process training several times can still
        # collect a finished run's cycles.
        gc.freeze()
        with denormals_flushed():  # here only: the evaluator child and env workers compute as dqn-eval does
            task.run()
    except KeyboardInterrupt as e:  # Interrupted included
        return Outcome("interrupted", interrupting_signal(e))
    except UserError:
        raise  # storage failures: nothing more can be written
    except Exception as e:
        if signals.signum is not None:  # a signal DI-engine's env manager turned into its own error
            return Outcome("interrupted", signals.signum)
        return Outcome("failed", failure=e)
    return Outcome(parts.recorder.stop_reason() if parts.recorder is not None else "finished")


def _build(parts: Parts, plan: RunPlan, roles: Roles, progress: ProgressLine) -> int:
    """This process's envs, networks and middleware, in DI-engine's order; returns the seed it explores with."""
    cfg = plan.cfg
    if roles.evaluates and roles.node is None:  # first: the child is forked before this process builds anything
        make_env = partial(env_manager, cfg, cfg.env.evaluator_env_num, False)
        parts.background = BackgroundEvaluation(cfg, make_env=make_env, seed_env=partial(seed_evaluator_env, cfg))
    parts.collector_env = env_manager(cfg, cfg.env.collector_env_num) if roles.collects else None
    if roles.evaluates and roles.node is not None:
        parts.evaluator_env = env_manager(cfg, cfg.env.evaluator_env_num, False)
    seed = int(cfg.seed) + roles.seed_offset
    set_pkg_seed(seed, use_cuda=cfg.policy.cuda)
    model, policy = ALGORITHMS[cfg.policy.type].build(cfg.policy)
    if roles.learns:
        parts.recorder = _make_recorder(plan, policy, progress)
    if roles.node is not None:
        _join_nodes(parts, plan, roles, model)
    _use_evaluator(parts, cfg, policy, model)
    _use_collector(parts, cfg, policy, env_seed(seed, plan.resume_state))
    _use_learner(parts, plan, policy, roles.node)
    return seed


def _launch(parts: Parts, cfg: Any, seed: int) -> None:
    if cfg.dqnkit.torch_threads is not None:
        torch.set_num_threads(cfg.dqnkit.torch_threads)
    with worker_signals():
        for manager in (parts.collector_env, parts.evaluator_env):
            if manager is not None:
                manager.launch()
    # DI-engine's env wrapper reseeds numpy's global generator with each env's own seed as it launches, so
    # epsilon-greedy and the collector's episode seeds would draw from the stream of the last env's seed
    # (benchmarks/NOTES.md). A stream of its own.
    np.random.seed(np.random.SeedSequence([seed, COLLECTOR_STREAM]).generate_state(1)[0])


def _build_and_run(
    plan: RunPlan, roles: Roles, progress: ProgressLine, signals: InterruptSignals
) -> tuple[Outcome, dict[str, Any] | None]:
    """Inside a started task: build, run and finish; whatever happens, close what was built and give back the
    process-wide settings changed. Returns (how the task ended, the summary written)."""
    parts = Parts()
    outcome: Outcome | None = None
    summary = None
    threads = torch.get_num_threads()
    try:
        signum = _build_deferring_signals(parts, plan, roles, progress, signals)
        outcome = Outcome("interrupted", signum) if signum is not None else _run_task(parts, signals, roles)
    finally:
        with late_signals_ignored():  # a late Ctrl-C must not cut the final checkpoint or the shutdown short
            try:
                if outcome is not None:
                    summary = _finish(parts, outcome, roles)
            finally:
                gc.unfreeze()
                parts.close()
                torch.set_num_threads(threads)
    return outcome, summary


def _build_deferring_signals(
    parts: Parts, plan: RunPlan, roles: Roles, progress: ProgressLine, signals: InterruptSignals
) -> int | None:
    """Build and launch while signals are deferred (the run folder exists: an interrupt now must still end in a
    final checkpoint); returns the signal that came meanwhile. An env worker that a terminal's SIGTERM killed while
    it launched is part of that interrupt, not a failure of its own."""
    try:
        seed = _build(parts, plan, roles, progress)
        _launch(parts, plan.cfg, seed)
        if roles.learns and plan.resume_state is not None and "random_state" in plan.resume_state:
            rngstate.restore(plan.resume_state["random_state"])  # after _launch's reseeding: continue the streams
    except Exception:
        if signals.signum is None or (roles.learns and parts.recorder is None):
            raise
    return signals.raise_from_now_on()


def _finish(parts: Parts, outcome: Outcome, roles: Roles) -> dict[str, Any] | None:
    summary = None
    if parts.recorder is not None:
        summary = parts.recorder.finish(outcome.stop_reason, outcome.signum, outcome.failure)
        DistributedWriter.get_instance().close()  # flush TensorBoard before a node process exits
    if parts.heartbeat is not None and roles.learns:
        distributed.announce_finish(parts.heartbeat)
    return summary


def run_planned(options: TrainOptions, plan: RunPlan, node: Node | None = None) -> int:
    """Run DI-engine's middleware pipeline for a planned run: all roles in this process (node None), or the one
    role of a node of a distributed run. Only the learner writes the run folder. Returns the exit code."""
    cfg = plan.cfg
    roles = Roles(node)
    fast_tree_construction()
    fast_batch_collation()
    # Deferring from the run folder's first file on: whatever signal comes, the folder ends with a summary and a
    # final checkpoint.
    with InterruptSignals(deferring=True) as signals:
        if roles.learns:
            given = {"main_config": to_plain(plan.main), "create_config": to_plain(plan.create)}
            runfolder.write_config_files(plan.run_dir, given, to_plain(cfg), options.command)
            ding_init(cfg)
        mute_ding_logging()
        if not options.quiet:
            _announce(plan, node)
        progress = ProgressLine(quiet=options.quiet or not roles.learns, max_env_steps=cfg.dqnkit.max_env_steps)
        with task.start(async_mode=False, ctx=OnlineRLContext()):
            outcome, summary = _build_and_run(plan, roles, progress, signals)
    return _exit_code(outcome, summary, plan, node)


def _exit_code(outcome: Outcome, summary: dict[str, Any] | None, plan: RunPlan, node: Node | None) -> int:
    failure, signum = outcome.failure, outcome.signum
    if summary is None:  # a collector or evaluator node: nothing of its own to report
        if failure is not None:
            raise TrainingFailed(
                f"{node.name if node else 'node'} stopped: {failure_line(failure)}", details=failure_frames(failure)
            ) from failure
        return 128 + signum if signum is not None else 0
    print_summary(summary, plan.run_dir)
    if failure is not None:
        raise TrainingFailed(
            f"training failed: {summary['failure']}; final.pth.tar and summary.json are in {plan.run_dir} "
            f"(continue with dqn-train --resume {plan.run_dir})",
            details=failure_frames(failure),
        ) from failure
    return 128 + signum if signum is not None else 0
