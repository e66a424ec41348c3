"""CartPole-v1 DQN: the fast check, which reaches its stop value (195, DI-engine's choice) in seconds."""

from easydict import EasyDict

main_config = EasyDict(
    dict(
        exp_name="cartpole_dqn",
        env=dict(
            env_id="CartPole-v1",
            collector_env_num=4,
            evaluator_env_num=4,
            n_evaluator_episode=4,
            stop_value=195,
        ),
        policy=dict(
            cuda=False,
            model=dict(obs_shape=4, action_shape=2, encoder_hidden_size_list=[128, 128, 64], dueling=True),
            discount_factor=0.97,
            nstep=1,
            learn=dict(update_per_collect=5, batch_size=64, learning_rate=0.001, target_update_freq=100),
            collect=dict(n_sample=32, unroll_len=1),
            eval=dict(evaluator=dict(eval_freq=100)),
            other=dict(
                eps=dict(type="exp", start=0.95, end=0.1, decay=10000),
                replay_buffer=dict(replay_buffer_size=20000),
            ),
        ),
        dqnkit=dict(max_env_steps=100_000, save_freq=200, keep_periodic=2),
    )
)
create_config = EasyDict(
    dict(
        env_manager=dict(type="base"),
        policy=dict(type="dqn"),
    )
)
