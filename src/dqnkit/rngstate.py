"""The process's random generators (Python's, numpy's global, torch's CPU one) as plain tensors a weights-only
checkpoint can hold, and back: a resumed run continues their streams instead of restarting them from the seed."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture() -> dict[str, Any]:
    version, keys, gauss = random.getstate()
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)
    _, np_keys, np_pos, np_has_gauss, np_gauss = np_state
    return {
        "python": {"version": version, "keys": torch.tensor(keys, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
    }


def restore(state: dict[str, Any]) -> None:
    py, nump = state["python"], state["numpy"]
    random.setstate((int(py["version"]), tuple(py["keys"].tolist()), py["gauss"]))
    keys = nump["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, int(nump["pos"]), int(nump["has_gauss"]), float(nump["gauss"])))
    torch.set_rng_state(state["torch"])
