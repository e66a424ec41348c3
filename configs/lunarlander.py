"""LunarLander-v2 DQN (gym 0.25), starting from DI-engine's dizoo recipe (lunarlander_dqn_config.py).

Kept from the recipe: the dueling network with encoder [512, 64], 3-step returns, 8 + 8 envs, a 100k replay buffer,
the target network copied every 100 updates. Changed, each where measurements said so (benchmarks/NOTES.md):
discount 0.995; in-process envs; 16 updates of batch 128 per 32 env steps at lr 5e-4; epsilon decaying exponentially
from 1.0 towards 0.05 (DI-engine's `exp` schedule); evaluation on 16 fresh episodes every 2,000 updates, stopping
when their mean reaches 220 and none scores below 100 (the recipe's mean of 8 replayed start states stops on lucky
evaluations); `cuda` decided by dqn-train --device.
"""

from easydict import EasyDict

main_config = EasyDict(
    dict(
        exp_name="lunarlander_dqn",
        env=dict(
            env_id="LunarLander-v2",
            collector_env_num=8,
            evaluator_env_num=8,
            n_evaluator_episode=16,
            stop_value=220,
        ),
        policy=dict(
            cuda=False,
            model=dict(obs_shape=8, action_shape=4, encoder_hidden_size_list=[512, 64], dueling=True),
            discount_factor=0.995,
            nstep=3,
            learn=dict(update_per_collect=16, batch_size=128, learning_rate=0.0005, target_update_freq=100),
            collect=dict(n_sample=32, unroll_len=1),
            eval=dict(evaluator=dict(eval_freq=2000)),
            other=dict(
                eps=dict(type="exp", start=1.0, end=0.05, decay=15000),
                replay_buffer=dict(replay_buffer_size=100000),
            ),
        ),
        dqnkit=dict(max_env_steps=400_000, save_freq=2000, keep_periodic=3, stop_min_return=100),
    )
)
create_config = EasyDict(
    dict(
        env_manager=dict(type="base"),
        policy=dict(type="dqn"),
    )
)
