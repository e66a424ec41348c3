"""LunarLander-v2 DQN (gym 0.25), starting from DI-engine's dizoo recipe (lunarlander_dqn_config.py).

Same network (dueling, encoder [512, 64]), gamma 0.99, 3-step returns, lr 1e-3, batch 64, hard target copy every
100 iterations, 100k replay. Changed for a 2-core machine: in-process envs (16 subprocesses cost more than they
give on 2 cores), `cuda` decided by dqn-train --device instead of hard-coded True. See benchmarks/NOTES.md.
"""

from easydict import EasyDict

main_config = EasyDict(
    dict(
        exp_name="lunarlander_dqn",
        env=dict(
            env_id="LunarLander-v2",
            collector_env_num=8,
            evaluator_env_num=8,
            n_evaluator_episode=8,
            stop_value=200,
        ),
        policy=dict(
            cuda=False,
            model=dict(obs_shape=8, action_shape=4, encoder_hidden_size_list=[512, 64], dueling=True),
            discount_factor=0.99,
            nstep=3,
            learn=dict(update_per_collect=10, batch_size=64, learning_rate=0.001, target_update_freq=100),
            collect=dict(n_sample=64, unroll_len=1),
            eval=dict(evaluator=dict(eval_freq=1000)),
            other=dict(
                eps=dict(type="exp", start=0.95, end=0.1, decay=50000),
                replay_buffer=dict(replay_buffer_size=100000),
            ),
        ),
        dqnkit=dict(max_env_steps=1_000_000, save_freq=1000, keep_periodic=3),
    )
)
create_config = EasyDict(
    dict(
        env_manager=dict(type="base"),
        policy=dict(type="dqn"),
    )
)
