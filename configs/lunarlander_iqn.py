"""LunarLander-v2 with DI-engine's IQN: configs/lunarlander.py with policy type iqn, everything else as measured
for DQN (benchmarks/README.md compares the types).
"""

import runpy
from pathlib import Path

family_config = runpy.run_path(str(Path(__file__).with_name("_family.py")))["family_config"]
main_config, create_config = family_config("lunarlander.py", "iqn", "lunarlander_iqn")
