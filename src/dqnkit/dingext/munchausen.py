"""The Munchausen DQN target (Vieillard, Pietquin and Geist, 2020) over n-step returns.

DI-engine ships it only for 1-step returns (`ding.rl_utils.m_q_1step_td_error`, used by its `mdqn` policy); dqnkit's
learner uses this n-step form when `policy.learn.td_target` is "munchausen". For the action taken in s:

    alpha * clip(tau * ln pi(a|s), -1, 0) + r_0 + g r_1 + ... + g^(n-1) r_(n-1)
        + g^n (1 - done) * sum_a' pi(a'|s') (q(s', a') - tau * ln pi(a'|s'))

with q the target network, pi = softmax(q / tau) and s' the state n steps on: a penalty (at most alpha) for actions
the target network rates below its best, and the soft value of s' in place of double DQN's bootstrap.
"""

from __future__ import annotations

import torch
from ding.rl_utils.td import nstep_return, nstep_return_data


def munchausen_nstep_target(
    target_q_obs: torch.Tensor,
    target_q_next_obs: torch.Tensor,
    action: torch.Tensor,
    reward: torch.Tensor,
    done: torch.Tensor,
    gamma: float,
    tau: float,
    alpha: float,
    value_gamma: torch.Tensor | None = None,
) -> torch.Tensor:
    """The target for each row: `target_q_*` (B, A) from the target network, `action` (B,), `reward` (n, B),
    `done` (B,), `value_gamma` (B,) the discount of the bootstrap where windows may be shorter than n (None:
    gamma ** n)."""
    tau_log_pi = tau * torch.log_softmax(target_q_obs / tau, dim=-1)
    bonus = alpha * tau_log_pi.gather(1, action.unsqueeze(1)).squeeze(1).clamp(min=-1.0, max=0.0)
    next_tau_log_pi = tau * torch.log_softmax(target_q_next_obs / tau, dim=-1)
    soft_value = (torch.softmax(target_q_next_obs / tau, dim=-1) * (target_q_next_obs - next_tau_log_pi)).sum(1)
    nstep = reward.shape[0]
    returns: torch.Tensor = nstep_return(nstep_return_data(reward, soft_value, done), gamma, nstep, value_gamma)
    return returns + bonus
