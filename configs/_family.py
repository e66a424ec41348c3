"""Shared by the configs of the DQN family: a base config turned into another DI-engine policy type."""

import copy
import runpy
from pathlib import Path

# What each type's model reads beyond DQN's (the dueling flag is DQN's alone).
MODEL_KEYS = {
    "c51": {"n_atom": 51},
    "qrdqn": {"num_quantiles": 32},
    "iqn": {"num_quantiles": 32},
    "rainbow": {"n_atom": 51},
}


def family_config(base: str, policy_type: str, exp_name: str, **model: object) -> tuple[dict, dict]:
    """(main_config, create_config) of configs/<base> with DI-engine's `policy_type` in place of DQN."""
    loaded = runpy.run_path(str(Path(__file__).with_name(base)))
    main = copy.deepcopy(loaded["main_config"])
    create = copy.deepcopy(loaded["create_config"])
    main.exp_name = exp_name
    main.policy.model.pop("dueling", None)
    main.policy.model.update({**MODEL_KEYS[policy_type], **model})
    create.policy.type = policy_type
    return main, create
