"""Recheck candidate t30r (issue 29): the study's trial 30 with 32 updates per 64 env steps instead of 16."""

import runpy
from pathlib import Path

candidate = runpy.run_path(str(Path(__file__).with_name("_candidate.py")))["candidate"]
main_config, create_config = candidate(
    "t30r",
    {
        "learn.learning_rate": 0.0017727415358430065,
        "learn.batch_size": 128,
        "learn.update_per_collect": 32,
        "collect.n_sample": 64,
        "learn.target_update_freq": 50,
        "discount_factor": 0.995,
        "other.eps.decay": 3741,
        "eval.evaluator.eval_freq": 2000,
    },
)
