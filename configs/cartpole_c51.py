"""CartPole-v1 with DI-engine's C51, a categorical return distribution: configs/cartpole.py with policy type c51."""

import runpy
from pathlib import Path

family_config = runpy.run_path(str(Path(__file__).with_name("_family.py")))["family_config"]
main_config, create_config = family_config("cartpole.py", "c51", "cartpole_c51", v_min=0, v_max=40)
