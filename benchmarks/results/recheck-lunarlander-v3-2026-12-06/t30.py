"""Recheck candidate t30 (issue 29): the study's trial 30."""

import runpy
from pathlib import Path

candidate = runpy.run_path(str(Path(__file__).with_name("_candidate.py")))["candidate"]
main_config, create_config = candidate(
    "t30",
    {
        "learn.learning_rate": 0.0017727415358430065,
        "learn.batch_size": 128,
        "learn.update_per_collect": 16,
        "collect.n_sample": 64,
        "learn.target_update_freq": 50,
        "discount_factor": 0.995,
        "other.eps.decay": 3741,
        "eval.evaluator.eval_freq": 1000,
    },
)
