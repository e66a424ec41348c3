"""Training: a planned run (plan) through DI-engine's middleware pipeline (pipeline), with dqnkit's bookkeeping
(recorder) and process handling (processes, background_eval), in one process or as the nodes of a distributed
run (distributed, launch). Importing it imports DI-engine quietly and checks its version (dqnkit.dingext)."""

import dqnkit.dingext  # noqa: F401
