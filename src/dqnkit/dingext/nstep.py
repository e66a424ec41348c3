"""A corrected stand-in for DI-engine 0.5.3's `nstep_reward_enhancer` middleware."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def nstep_reward_enhancer(cfg: Any) -> Callable[[Any], None]:
    """A corrected stand-in for DI-engine's `nstep_reward_enhancer` middleware (same place in the pipeline, same
    fields out: `reward` of shape (nstep,), `value_gamma`).

    DI-engine 0.5.3's version treats `ctx.trajectories` as one time-ordered sequence, but StepCollector gives one
    chunk per env, concatenated: the last steps of each env's chunk sum rewards from the next env's chunk. It
    leaves `next_obs` and `done` at the first step, so DQN bootstraps gamma**n * Q(s[t+1]) after summing n rewards
    (r[t+1..] counted twice); it ends a window one step before a terminal transition, dropping the terminal
    reward; and it cuts windows at the end of each collection (n_sample 32 over 8 envs is 4 steps per env, so
    `nstep` 5 or 8 trains exactly as 4 would).

    Here each env's steps form one stream across collections: a window ends after n steps or at a terminal step
    (included); a step whose window needs the env's next collection waits for it. `next_obs`, `done` and
    `value_gamma` = gamma**(window length) come from the window's last step: the standard n-step target."""

    nstep = int(cfg.policy.nstep)
    gamma = float(cfg.policy.discount_factor)
    waiting: dict[int, list[Any]] = {}  # env -> its latest steps, whose windows need the next collection

    def _enhance(ctx: Any) -> None:
        ready: list[Any] = []
        end_idx: list[int] = []
        start = 0
        for env, end in enumerate(ctx.trajectory_end_idx):
            steps = waiting.pop(env, []) + ctx.trajectories[start : end + 1]
            start = end + 1
            rewards = [t.reward for t in steps]
            next_obs = [t.next_obs for t in steps]
            dones = [t.done for t in steps]
            for i in range(len(steps)):
                last = i
                while last - i + 1 < nstep and not bool(dones[last]) and last + 1 < len(steps):
                    last += 1
                window = last - i + 1
                if window < nstep and not bool(dones[last]):
                    waiting[env] = steps[i:]
                    break
                step = steps[i]
                step.reward = torch.cat(rewards[i : last + 1] + [torch.zeros_like(rewards[i])] * (nstep - window))
                step.value_gamma = torch.tensor([gamma**window], dtype=torch.float32)
                step.next_obs = next_obs[last]
                step.done = dones[last]
                ready.append(step)
            end_idx.append(len(ready) - 1)
        ctx.trajectories, ctx.trajectory_end_idx = ready, end_idx

    return _enhance
