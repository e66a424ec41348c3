"""LunarLander-v2 with DI-engine's C51: configs/lunarlander.py with policy type c51, everything else as measured
for DQN (benchmarks/README.md compares the types).

The return support [-300, 300] spans LunarLander's discounted returns at discount 0.995.
"""

import runpy
from pathlib import Path

family_config = runpy.run_path(str(Path(__file__).with_name("_family.py")))["family_config"]
main_config, create_config = family_config("lunarlander.py", "c51", "lunarlander_c51", v_min=-300, v_max=300)
