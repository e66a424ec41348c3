"""Pong from pixels (ALE/Pong-v5 through ale-py), DQN with the Nature network, sized for a CPU.

The observation is the DeepMind preprocessing of `env.atari` (dqnkit's defaults, recorded in the run's config):
up to 30 no-op starts, 4 frames per action with a max over the last two, 84x84 grayscale, a stack of 4, FIRE on
reset, no sticky actions; in training a lost life ends the episode and rewards are clipped to [-1, 1]. Evaluation
plays full games for the real score. The replay buffer stores each frame once, zlib-compressed.

From DI-engine's pong_dqn_config.py: 3-step returns, batch 32, lr 1e-4, 10 updates per 96 env steps, the target
copied every 500 updates, a 100k buffer, the stop value 20. Changed for a CPU (benchmarks/NOTES.md): the Nature
network (conv 32-64-64, then 512) instead of [128, 128, 512], which costs ~8x less per update; Adam's epsilon 1.5e-4
(Dopamine's) instead of 1e-8, without which the first conv layer's units die in the first few thousand updates;
in-process envs; epsilon linear to 0.02 over 250k env steps.

The stop rule plays the evaluation protocol, as LunarLander's plays 16 fresh episodes with a floor: 8 fresh full
games with up to 30 no-op starts and epsilon 0.05 (dqnkit.eval_epsilon's default for Atari), stopping when their
mean reaches 18 (the Nature DQN's 18.9 by this protocol) with no game below 10. Under the earlier rule (4 greedy
games, mean 20) seed 0 stopped after 918k env steps on one core in under two hours, with a stop checkpoint that
scored 10.5 by the protocol (worst game 1): that rule stopped on agents that were not yet good.
"""

from easydict import EasyDict

main_config = EasyDict(
    dict(
        exp_name="pong_dqn",
        env=dict(
            env_id="ALE/Pong-v5",
            collector_env_num=8,
            evaluator_env_num=8,
            n_evaluator_episode=8,
            stop_value=18,
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
        dqnkit=dict(max_env_steps=2_000_000, save_freq=5000, keep_periodic=2, stop_min_return=10),
    )
)
create_config = EasyDict(
    dict(
        env_manager=dict(type="base"),
        policy=dict(type="dqn"),
    )
)
