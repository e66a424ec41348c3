"""Recheck candidate t35 (issue 29): the study's trial 35 (its best_config.py)."""

import runpy
from pathlib import Path

candidate = runpy.run_path(str(Path(__file__).with_name("_candidate.py")))["candidate"]
main_config, create_config = candidate(
    "t35",
    {
        "learn.learning_rate": 0.0007998365746012937,
        "learn.batch_size": 256,
        "learn.update_per_collect": 32,
        "collect.n_sample": 64,
        "learn.target_update_freq": 50,
        "discount_factor": 0.99,
        "other.eps.decay": 11675,
        "eval.evaluator.eval_freq": 2000,
    },
)
