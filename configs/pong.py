"""Pong from pixels (ALE/Pong-v5 through ale-py), DQN with the Nature network, sized for a CPU.

The observation is the DeepMind preprocessing of `env.atari` (dqnkit's defaults, recorded in the run's config):
up to 30 no-op starts, 4 frames per action with a max over the last two, 84x84 grayscale, a stack of 4, FIRE on
reset, no sticky actions; in training a lost life ends the episode and rewards are clipped to [-1, 1]. Evaluation
plays full games for the real score. The replay buffer stores each frame once, zlib-compressed.

From DI-engine's pong_dqn_config.py: 3-step returns, batch 32, lr 1e-4, 10 updates per 96 env steps, the target
copied every 500 updates, a 100k buffer, the stop value 20. Changed for a CPU (benchmarks/NOTES.md): the Nature
network (conv 32-64-64, then 512) instead of [128, 128, 512], which costs ~8x less per update; Adam's epsilon 1.5e-4
(Dopamine's) instead of 1e-8, without which the first conv layer's units die in the first few thousand updates;
in-process envs; epsilon linear to 0.02 over 250k env steps. On one core of the project's 2-core machine, seed 0
reached the stop value after 918k env steps in under two hours.
"""

from easydict import EasyDict

main_config = EasyDict(
    dict(
        exp_name="pong_dqn",
        env=dict(
            env_id="ALE/Pong-v5",
            collector_env_num=8,
            evaluator_env_num=4,
            n_evaluator_episode=4,
            stop_value=20,
        ),
        policy=dict(
            cuda=False,
            model=dict(encoder_hidden_size_list=[32, 64, 64, 512]),
            discount_factor=0.99,
            nstep=3,
            learn=dict(
                update_per_collect=10, batch_size=32, learning_rate=0.0001, adam_eps=1.5e-4, target_update_freq=500
            ),
            collect=dict(n_sample=96, unroll_len=1),
            eval=dict(evaluator=dict(eval_freq=2500)),
            other=dict(
                eps=dict(type="linear", start=1.0, end=0.02, decay=250_000),
                replay_buffer=dict(replay_buffer_size=100_000),
            ),
        ),
        dqnkit=dict(max_env_steps=2_000_000, save_freq=5000, keep_periodic=2),
    )
)
create_config = EasyDict(
    dict(
        env_manager=dict(type="base"),
        policy=dict(type="dqn"),
    )
)
