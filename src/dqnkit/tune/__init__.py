"""dqn-tune: hyperparameter search over several seeds on Optuna."""
