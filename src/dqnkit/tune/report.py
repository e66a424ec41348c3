"""What a study leaves in its folder, rewritten from the storage after every trial: trials.csv, best_config.py and
the plots. Any process of a shared study can write them; the storage is the record."""

from __future__ import annotations

import pprint
import warnings
from pathlib import Path
from typing import Any

import optuna

from dqnkit.config import apply_overrides, parse_override, to_plain
from dqnkit.files import atomic_write_bytes
from dqnkit.plotting import plot_runs, save_png
from dqnkit.tune.space import as_overrides

TRIALS_CSV = "trials.csv"
BEST_CONFIG = "best_config.py"
HISTORY_PNG = "optimization_history.png"
IMPORTANCES_PNG = "param_importances.png"
BEST_CURVES_PNG = "best_trial_curves.png"
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=FINISHED)


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return study.best_trial if complete else None


def write_trials_csv(study: optuna.Study, path: Path) -> None:
    frame = study.trials_dataframe(attrs=("number", "state", "value", "duration", "params", "user_attrs"))
    atomic_write_bytes(path, frame.to_csv(index=False).encode())


def best_config_text(
    study: optuna.Study,
    trial: optuna.trial.FrozenTrial,
    given: tuple[dict[str, Any], dict[str, Any]],
    compiled: dict[str, Any],
) -> str:
    """The user's config (after --set) with the best trial's values, as a config file dqn-train loads."""
    main, create = to_plain(given[0]), to_plain(given[1])
    values = trial.user_attrs.get("config", trial.params)
    apply_overrides(main, [parse_override(o) for o in as_overrides(values)], compiled)
    main["exp_name"] = f"{main.get('exp_name', 'dqn')}_tuned"
    lines = [f"#   {key} = {value!r}" for key, value in values.items()]
    return (
        f"# dqn-tune study {study.study_name!r}: trial {trial.number}, objective {trial.value:.6g}\n"
        f"# ({trial.user_attrs.get('summary', '')}). Its values:\n" + "\n".join(lines) + "\n"
        "# Train it with: dqn-train --config this_file\n"
        "from easydict import EasyDict\n\ninf, nan = float('inf'), float('nan')\n\n"
        f"main_config = EasyDict({pprint.pformat(main, sort_dicts=False)})\n\n"
        f"create_config = EasyDict({pprint.pformat(create, sort_dicts=False)})\n"
    )


def write_plots(study: optuna.Study, study_dir: Path) -> list[str]:
    """The plots the finished trials allow; returns why any was left out."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        from optuna.visualization import matplotlib as optuna_plots

        save_png(optuna_plots.plot_optimization_history(study).figure, study_dir / HISTORY_PNG, None)
        if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) >= 2:
            try:
                save_png(optuna_plots.plot_param_importances(study).figure, study_dir / IMPORTANCES_PNG, None)
            except (RuntimeError, ValueError) as e:
                notes.append(f"{IMPORTANCES_PNG}: {e}")
        else:
            notes.append(f"{IMPORTANCES_PNG} needs two completed trials")
    plt.close("all")
    best = best_trial(study)
    if best is not None:
        dirs = [Path(d) for d in best.user_attrs.get("run_dirs", []) if Path(d, "metrics.csv").is_file()]
        if dirs:
            plot_runs(dirs, study_dir / BEST_CURVES_PNG, title=f"{study.study_name}: trial {best.number}, every seed")
        else:
            notes.append(f"{BEST_CURVES_PNG}: trial {best.number}'s run folders are on the machine that ran it")
    return notes


def write_reports(
    study: optuna.Study, study_dir: Path, given: tuple[dict[str, Any], dict[str, Any]], compiled: dict[str, Any]
) -> list[str]:
    """Returns why any plot was left out."""
    write_trials_csv(study, study_dir / TRIALS_CSV)
    best = best_trial(study)
    if best is not None:
        atomic_write_bytes(study_dir / BEST_CONFIG, best_config_text(study, best, given, compiled).encode())
    return write_plots(study, study_dir)
