"""dqn-tune's logic in process: search spaces (the files users edit), the objective and what pruning compares."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import optuna
import pytest

from dqnkit.config import compile_dqn_config, load_config_file, parse_override, to_plain
from dqnkit.errors import UserError
from dqnkit.tune import report
from dqnkit.tune.objective import Curve, area_value, intermediate, report_steps, seed_steps, steps_value
from dqnkit.tune.space import SPACES_DIR, Choices, Range, as_overrides, config_values, derived, load_space, sample

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def cartpole() -> dict[str, Any]:
    main, create = load_config_file(CONFIGS / "cartpole.py")
    return dict(to_plain(compile_dqn_config(main, create, 0)))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("policy_type", ["dqn", "c51", "qrdqn", "iqn", "rainbow"])
def test_every_default_space_fits_its_policy_type(policy_type: str) -> None:
    config = "cartpole.py" if policy_type == "dqn" else f"cartpole_{policy_type}.py"
    main, create = load_config_file(CONFIGS / config)
    space = load_space(SPACES_DIR / f"{policy_type}.yaml", dict(to_plain(compile_dqn_config(main, create, 0))))
    keys = {entry.key for entry in space}
    assert {"policy.learn.learning_rate", "policy.learn.update_per_collect", "policy.nstep"} <= keys


def test_a_space_reads_choices_and_ranges(tmp_path: Path, cartpole: dict[str, Any]) -> None:
    space = load_space(
        write(
            tmp_path,
            "policy.learn.batch_size: [32, 64]\n"
            "policy.learn.learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}\n"
            "policy.other.eps.decay: {low: 1000, high: 5000}\n"
            "policy.model.encoder_hidden_size_list: [[64, 64], [128]]\n",
        ),
        cartpole,
    )
    assert space == [
        Choices("policy.learn.batch_size", (32, 64)),
        Range("policy.learn.learning_rate", 1e-4, 1e-2, log=True, integer=False),
        Range("policy.other.eps.decay", 1000, 5000, log=False, integer=True),
        Choices("policy.model.encoder_hidden_size_list", ([64, 64], [128])),
    ]


def test_sampled_values_become_dqn_train_overrides(tmp_path: Path, cartpole: dict[str, Any]) -> None:
    space = load_space(SPACES_DIR / "dqn.yaml", cartpole)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        params = sample(space, study.ask())
        assert 1e-4 <= params["policy.learn.learning_rate"] <= 3e-3
        assert isinstance(params["policy.other.eps.decay"], int)
        widths = params["policy.model.encoder_hidden_size_list"]
        assert isinstance(widths, list) and all(isinstance(w, int) for w in widths)
        # what dqn-train --set reads back is the sampled value, lists included
        assert dict(parse_override(o) for o in as_overrides(params)) == params


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("policy.learn.learnin_rate: [0.001]\n", "did you mean policy.learn.learning_rate?"),
        ("policy.learn.batch_size: []\n", "has no choices"),
        ("policy.learn.batch_size: [32, 6.5]\n", "expected an integer"),
        ("policy.learn.learning_rate: {low: 0.01, high: 0.001}\n", "needs low < high"),
        ("policy.learn.learning_rate: {low: 0, high: 0.1, log: true}\n", "low > 0 with log"),
        ("policy.learn.learning_rate: {low: 0.001}\n", "must be a list of choices or {low: L, high: H}"),
        ("policy.learn: [1]\n", "is a section"),
        ("- just a list\n", "must map config keys"),
        ("a: [1\n", "is not valid YAML"),
    ],
)
def test_a_bad_space_is_one_line_naming_the_entry(
    tmp_path: Path, cartpole: dict[str, Any], text: str, fragment: str
) -> None:
    with pytest.raises(UserError, match=None) as caught:
        load_space(write(tmp_path, text), cartpole)
    assert fragment in str(caught.value)


def summary(reason: str, env_steps: int, best: float, last: float) -> dict[str, Any]:
    return {"stop_reason": reason, "env_steps": env_steps, "best_eval": best, "last_eval": {"mean": last}}


def test_steps_counts_a_seed_that_did_not_stop_as_the_budget_plus_its_shortfall() -> None:
    assert seed_steps(summary("stop_value", 41_000, 230, 230), 100_000, 200) == 41_000
    assert seed_steps(summary("max_env_steps", 100_000, 150, 120), 100_000, 200) == 125_000  # 50 short of 200
    assert seed_steps(summary("max_env_steps", 100_000, -500, -500), 100_000, 200) == 200_000  # capped


def test_steps_is_the_median_seed_and_a_better_stop_breaks_ties() -> None:
    solved = [summary("stop_value", s, 250, 250) for s in (40_000, 60_000, 90_000)]
    assert steps_value(solved, 100_000, 200) == pytest.approx(60_000 + 0.49 * 0.75)
    better = [summary("stop_value", s, 300, 300) for s in (40_000, 60_000, 90_000)]
    assert steps_value(better, 100_000, 200) < steps_value(solved, 100_000, 200) < 60_001
    one_failed = [*solved[:2], summary("max_env_steps", 100_000, 100, 90)]
    assert steps_value(one_failed, 100_000, 200) == steps_value(solved, 100_000, 200)  # the median seed decides


def test_area_is_the_mean_evaluation_along_the_budget() -> None:
    # 0 until step 500, 100 from then on; a run that stopped at 1000 keeps its last value to the budget of 2000
    stopped = Curve((0, 500, 1000), (0.0, 100.0, 100.0), ended=True)
    assert stopped.area(2000) == pytest.approx(75.0)
    assert stopped.area(1000) == pytest.approx(50.0)
    assert area_value([stopped, Curve((0, 2000), (10.0, 10.0), True), Curve((0,), (20.0,), True)], 2000) == 20.0
    assert math.isnan(Curve((), (), ended=False).area(2000))


def test_pruning_waits_for_every_seed_and_compares_the_median() -> None:
    fast = Curve((0, 1000, 2000), (0.0, 100.0, 150.0), ended=False)
    slow = Curve((0, 1000), (0.0, 50.0), ended=False)
    done = Curve((0, 500), (10.0, 210.0), ended=True)  # stopped at the stop value, holds it
    assert intermediate("steps", [fast, slow], 2000, 200.0) is None  # slow has not got there
    assert intermediate("steps", [fast, slow, done], 1000, 200.0) == pytest.approx(100.0)  # median 100
    assert intermediate("steps", [done], 5000, 200.0) == 0.0
    # areas so far: fast (0 * 1000 + 100 * 1000) / 2000 = 50, done (10 * 500 + 210 * 1500) / 2000 = 160
    assert intermediate("area", [fast, done], 2000, 200.0) == pytest.approx(105.0)
    assert report_steps(100_000)[:2] == [5_000, 10_000] and report_steps(100_000)[-1] == 100_000


def test_evaluations_stay_as_many_env_steps_apart_as_the_config_says(cartpole: dict[str, Any]) -> None:
    # cartpole.py: eval_freq 100 iterations of 5 updates per 32 env steps = every 640 env steps
    assert derived(cartpole, {"policy.learn.update_per_collect": 10}) == {"policy.eval.evaluator.eval_freq": 200}
    assert derived(cartpole, {"policy.collect.n_sample": 64}) == {"policy.eval.evaluator.eval_freq": 50}
    assert derived(cartpole, {"policy.learn.batch_size": 64}) == {}
    assert derived(cartpole, {"policy.collect.n_sample": 64, "policy.eval.evaluator.eval_freq": 7}) == {}


def test_the_configs_own_values_start_the_search_when_the_space_holds_them(
    tmp_path: Path, cartpole: dict[str, Any]
) -> None:
    assert config_values(load_space(SPACES_DIR / "dqn.yaml", cartpole), cartpole) is not None
    outside = load_space(write(tmp_path, "policy.nstep: [3, 5]\n"), cartpole)
    assert config_values(outside, cartpole) is None  # cartpole.py's nstep is 1
    narrow = load_space(
        write(
            tmp_path,
            "policy.model.encoder_hidden_size_list: [[128, 128, 64], [64]]\n"
            "policy.learn.learning_rate: {low: 1.0e-4, high: 1.0e-2}\n",
        ),
        cartpole,
    )
    values = config_values(narrow, cartpole)
    assert values == {"policy.model.encoder_hidden_size_list": "[128, 128, 64]", "policy.learn.learning_rate": 0.001}
    study = optuna.create_study()
    study.enqueue_trial(values)
    assert sample(narrow, study.ask()) == {
        "policy.model.encoder_hidden_size_list": [128, 128, 64],
        "policy.learn.learning_rate": 0.001,
    }


def finished_study(values: list[float]) -> optuna.Study:
    """A real Optuna study whose trials completed with these scores (steps: lower is better)."""
    study = optuna.create_study(study_name="rechecked", direction="minimize")
    for number, value in enumerate(values):
        lr = 1e-3 * (number + 1)
        study.add_trial(
            optuna.trial.create_trial(
                value=value,
                user_attrs={"config": {"policy.learn.learning_rate": lr}, "summary": f"score {value:,.0f} env steps"},
            )
        )
    return study


def test_a_recheck_on_fresh_seeds_picks_the_best_config(tmp_path: Path, cartpole: dict[str, Any]) -> None:
    study = finished_study([90_000, 45_000, 60_000, 50_000])
    assert [t.number for t in report.finalists(study, 3)] == [1, 3, 2]  # the search's three best
    assert report.best_trial(study).number == 1  # nothing rechecked: the search's best
    # trial 1 was lucky on the search's seeds; on fresh ones trial 3 does better
    study.set_user_attr("recheck:1", {"seeds": [3, 4], "run_dirs": [], "value": 98_000.2, "summary": "score 98,000"})
    study.set_user_attr("recheck:3", {"seeds": [3, 4], "run_dirs": [], "value": 52_000.1, "summary": "score 52,000"})
    study.set_user_attr("recheck:2", {"seeds": [3, 4], "run_dirs": [], "failure": "seed 3: exit code 1"})
    assert report.best_trial(study).number == 3

    main, create = load_config_file(CONFIGS / "cartpole.py")
    text = report.best_config_text(study, report.best_trial(study), (main, create), cartpole)
    assert "trial 3" in text and "Rechecked on seeds 3-4: score 52,000." in text
    (tmp_path / "best_config.py").write_text(text)
    loaded, _ = load_config_file(tmp_path / "best_config.py")  # as dqn-train loads it
    assert loaded["policy"]["learn"]["learning_rate"] == pytest.approx(4e-3)

    report.write_trials_csv(study, tmp_path / "trials.csv")
    rows = {int(r["number"]): r for r in csv.DictReader((tmp_path / "trials.csv").open())}
    assert rows[3]["recheck_value"] == "52000.1" and rows[0]["recheck_value"] == ""
    assert rows[2]["recheck_summary"] == "seed 3: exit code 1"


def test_a_maximized_study_rechecks_its_highest_scores() -> None:
    study = optuna.create_study(direction="maximize")
    for value in (100.0, 180.0, 150.0):
        study.add_trial(optuna.trial.create_trial(value=value))
    assert [t.number for t in report.finalists(study, 2)] == [1, 2]
    study.set_user_attr("recheck:1", {"seeds": [3], "run_dirs": [], "value": 120.0, "summary": "score 120.0"})
    study.set_user_attr("recheck:2", {"seeds": [3], "run_dirs": [], "value": 140.0, "summary": "score 140.0"})
    assert report.best_trial(study).number == 2
