"""Re-check candidate t33 (issue 29): configs/lunarlander_v3.py with the study's values."""

import copy
import runpy
from pathlib import Path

_b = runpy.run_path(str(Path(__file__).parents[3] / "configs" / "lunarlander_v3.py"))
main_config = copy.deepcopy(_b["main_config"])
create_config = copy.deepcopy(_b["create_config"])
p = main_config.policy
p.learn.learning_rate = 0.000759927052058153
p.learn.batch_size = 256
p.learn.update_per_collect = 16
p.collect.n_sample = 64
p.learn.target_update_freq = 50
p.discount_factor = 0.995
p.other.eps.decay = 12122
p.eval.evaluator.eval_freq = 1000
main_config.exp_name = "ll_v3_t33"
