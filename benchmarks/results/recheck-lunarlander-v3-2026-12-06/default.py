"""The LunarLander-v3 default before the recheck (issue 29): configs/lunarlander.py's values on LunarLander-v3, what
configs/lunarlander_v3.py was when the study, the recheck and the held-out comparisons ran as `dqnkit-v3`."""

import copy
import runpy
from pathlib import Path

_b = runpy.run_path(str(Path(__file__).resolve().parents[3] / "configs" / "lunarlander.py"))
main_config = copy.deepcopy(_b["main_config"])
main_config.exp_name = "lunarlander_v3_dqn"
main_config.env.env_id = "LunarLander-v3"
create_config = copy.deepcopy(_b["create_config"])
