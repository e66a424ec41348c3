"""CartPole-v1 with DI-engine's IQN, implicit quantile networks: configs/cartpole.py with policy type iqn, drawing 8
quantile fractions per forward pass (as configs/lunarlander_iqn.py; DI-engine's 32 cost ~4x per update)."""

import runpy
from pathlib import Path

family_config = runpy.run_path(str(Path(__file__).with_name("_family.py")))["family_config"]
main_config, create_config = family_config("cartpole.py", "iqn", "cartpole_iqn", num_quantiles=8)
