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
RECHECK = "recheck:"  # study attribute "recheck:<trial number>": that trial trained again on fresh seeds


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=FINISHED)


def rechecks(study: optuna.Study) -> dict[int, dict[str, Any]]:
    """The recorded rechecks by trial number: seeds, run_dirs, and value and summary (or failure)."""
    return {int(key[len(RECHECK) :]): value for key, value in study.user_attrs.items() if key.startswith(RECHECK)}


def recheck_line(study: optuna.Study, number: int) -> str | None:
    """ "seeds 3-5: <score and stops>" for a rechecked trial that trained; None otherwise."""
    record = rechecks(study).get(number)
    if record is None or record.get("value") is None:
        return None
    return f"seeds {seed_range(record['seeds'])}: {record['summary']}"


def _sign(study: optuna.Study) -> float:
    """Multiplies a score so that lower is better, whichever way the study goes."""
    return -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0


def finalists(study: optuna.Study, count: int) -> list[optuna.trial.FrozenTrial]:
    """The `count` best completed trials by the search's own score, best first (ties: the earlier trial)."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    sign = _sign(study)
    return sorted(complete, key=lambda t: (sign * float(t.value or 0.0), t.number))[:count]


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """Once trials are rechecked, the best of them on their fresh seeds; before, the search's best."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return None
    scored = {number: float(r["value"]) for number, r in rechecks(study).items() if r.get("value") is not None}
    if not scored:
        return study.best_trial
    sign = _sign(study)
    number = min(scored, key=lambda n: (sign * scored[n], n))
    return study.get_trials(deepcopy=False)[number]


def write_trials_csv(study: optuna.Study, path: Path) -> None:
    frame = study.trials_dataframe(attrs=("number", "state", "value", "duration", "params", "user_attrs"))
    done = rechecks(study)
    if done:
        frame["recheck_value"] = frame["number"].map(lambda n: done.get(n, {}).get("value"))
        frame["recheck_summary"] = frame["number"].map(
            lambda n: done[n].get("summary") or done[n].get("failure") if n in done else None
        )
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
    line = recheck_line(study, trial.number)
    rechecked = f"# Rechecked on {line}.\n" if line else ""
    return (
        f"# dqn-tune study {study.study_name!r}: trial {trial.number}, objective {trial.value:.6g}\n"
        f"# ({trial.user_attrs.get('summary', '')}).\n" + rechecked + "# Its values:\n" + "\n".join(lines) + "\n"
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
        recorded = [*best.user_attrs.get("run_dirs", []), *rechecks(study).get(best.number, {}).get("run_dirs", [])]
        dirs = [Path(d) for d in recorded if Path(d, "metrics.csv").is_file()]
        if dirs:
            plot_runs(dirs, study_dir / BEST_CURVES_PNG, title=f"{study.study_name}: trial {best.number}, every seed")
        else:
            notes.append(f"{BEST_CURVES_PNG}: trial {best.number}'s run folders are on the machine that ran it")
    return notes


def seed_range(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])


def write_reports(
    study: optuna.Study, study_dir: Path, given: tuple[dict[str, Any], dict[str, Any]], compiled: dict[str, Any]
) -> list[str]:
    """Returns why any plot was left out."""
    write_trials_csv(study, study_dir / TRIALS_CSV)
    best = best_trial(study)
    if best is not None:
        atomic_write_bytes(study_dir / BEST_CONFIG, best_config_text(study, best, given, compiled).encode())
    return write_plots(study, study_dir)
