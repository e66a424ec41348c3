"""Re-check candidate t30r (issue 29): the study's trial 30 with 32 updates per collect of 64 env steps (0.5 a step)."""

import copy
import runpy
from pathlib import Path

_b = runpy.run_path(str(Path(__file__).parents[3] / "configs" / "lunarlander_v3.py"))
main_config = copy.deepcopy(_b["main_config"])
create_config = copy.deepcopy(_b["create_config"])
p = main_config.policy
p.learn.learning_rate = 0.0017727415358430065
p.learn.batch_size = 128
p.learn.update_per_collect = 32
p.collect.n_sample = 64
p.learn.target_update_freq = 50
p.discount_factor = 0.995
p.other.eps.decay = 3741
p.eval.evaluator.eval_freq = 2000
main_config.exp_name = "ll_v3_t30r"
