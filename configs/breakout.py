"""Breakout from pixels (ALE/Breakout-v5): configs/pong.py's settings (the Nature network on the DeepMind
preprocessing, sized for a CPU; see that file and docs/atari.md), stopping when 8 fresh games by the evaluation
protocol average 400 (the Nature DQN's 401) with none below 100.
"""

import runpy
from pathlib import Path

pong = runpy.run_path(str(Path(__file__).with_name("pong.py")))
main_config, create_config = pong["main_config"], pong["create_config"]
main_config.exp_name = "breakout_dqn"
main_config.env.env_id = "ALE/Breakout-v5"
main_config.env.stop_value = 400
main_config.dqnkit.stop_min_return = 100
