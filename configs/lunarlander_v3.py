"""LunarLander-v3 DQN (Gymnasium 1.x): configs/lunarlander.py with the Gymnasium environment.

DI-engine's DingEnvWrapper recognises a gymnasium.Env and wraps it the same way as a gym 0.25 one.
"""

import copy
import runpy
from pathlib import Path

_base = runpy.run_path(str(Path(__file__).with_name("lunarlander.py")))

main_config = copy.deepcopy(_base["main_config"])
main_config.exp_name = "lunarlander_v3_dqn"
main_config.env.env_id = "LunarLander-v3"
create_config = copy.deepcopy(_base["create_config"])
