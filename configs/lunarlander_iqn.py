"""LunarLander-v2 with DI-engine's IQN: configs/lunarlander.py with policy type iqn, everything else as measured
for DQN (benchmarks/README.md compares the types).

8 quantile fractions per forward pass instead of DI-engine's 32: with 32 an env step cost about ten times a DQN one
(benchmarks/NOTES.md). Exports average over their own fixed fractions (dqn-export --quantiles).
"""

import runpy
from pathlib import Path

family_config = runpy.run_path(str(Path(__file__).with_name("_family.py")))["family_config"]
main_config, create_config = family_config("lunarlander.py", "iqn", "lunarlander_iqn", num_quantiles=8)
