"""CartPole-v1 with DI-engine's Rainbow: configs/cartpole.py with policy type rainbow."""

import runpy
from pathlib import Path

family_config = runpy.run_path(str(Path(__file__).with_name("_family.py")))["family_config"]
main_config, create_config = family_config("cartpole.py", "rainbow", "cartpole_rainbow", v_min=0, v_max=40)
