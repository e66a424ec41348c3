"""Shared by the recheck's candidate configs: configs/lunarlander_v3.py with a trial's update settings."""

import copy
import runpy
from pathlib import Path

LUNARLANDER_V3 = Path(__file__).resolve().parents[3] / "configs" / "lunarlander_v3.py"


def candidate(name: str, values: dict[str, float]) -> tuple[dict, dict]:
    """(main_config, create_config) with `values` as policy keys, e.g. {"learn.learning_rate": 1e-3}."""
    loaded = runpy.run_path(str(LUNARLANDER_V3))
    main = copy.deepcopy(loaded["main_config"])
    for key, value in values.items():
        *path, last = key.split(".")
        section = main.policy
        for part in path:
            section = section[part]
        section[last] = value
    main.exp_name = f"ll_v3_{name}"
    return main, copy.deepcopy(loaded["create_config"])
