"""LunarLander-v3 DQN (Gymnasium 1.x): configs/lunarlander.py's network, 3-step returns, discount, buffer and stop rule
on Gymnasium's environment, with the update settings that dqn-tune's LunarLander-v3 study and the recheck of its best
trials on fresh seeds chose (benchmarks/NOTES.md, "Rechecking the study's best trials"): 32 updates of batch 128 per 64
env steps at lr 1.77e-3 (the study's sampled value, kept exactly), the target network copied every 50 updates, epsilon
decaying with a 3,741-env-step time constant, evaluation every 2,000 updates (4,000 env steps, as in lunarlander.py).

lunarlander.py keeps its own values: its comparison with DI-engine's stock recipe on v2 was measured with them.
DI-engine's DingEnvWrapper recognises a gymnasium.Env and wraps it the same way as a gym 0.25 one.
"""

import copy
import runpy
from pathlib import Path

_base = runpy.run_path(str(Path(__file__).with_name("lunarlander.py")))

main_config = copy.deepcopy(_base["main_config"])
main_config.exp_name = "lunarlander_v3_dqn"
main_config.env.env_id = "LunarLander-v3"
main_config.policy.learn.update(
    dict(update_per_collect=32, batch_size=128, learning_rate=0.0017727415358430065, target_update_freq=50)
)
main_config.policy.collect.n_sample = 64
main_config.policy.other.eps.decay = 3741
create_config = copy.deepcopy(_base["create_config"])
