"""dqn-tune's study: Optuna's TPE sampler and a pruner over trials that each train one sampled configuration on
several seeds, kept in an RDB storage (a SQLite file in the study folder, or a server several machines share).

A trial that Ctrl-C stops is failed and queued again with the same values; one whose process died is failed by the
heartbeat (another process of the study, or this command run again, notices) and queued the same way. Only
completed and pruned trials count towards --trials, so nothing is lost or counted twice."""

from __future__ import annotations

import functools
import math
import random
import shutil
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from dqnkit.config import to_plain
from dqnkit.errors import UserError
from dqnkit.progress import print_line, redraw
from dqnkit.runfolder import require_plain_name
from dqnkit.signals import InterruptSignals
from dqnkit.train.plan import TrainOptions, plan_run, run_name
from dqnkit.train.seeds import SeedRun
from dqnkit.tune import report
from dqnkit.tune.objective import OBJECTIVES, trial_value
from dqnkit.tune.space import Entry, as_overrides, config_values, default_space_file, derived, load_space, sample
from dqnkit.tune.trial import Reporter, curve_of, failure, run_seeds, seed_runs, status_line
from dqnkit.validate import writable_dir

HEARTBEAT_S = 20
GRACE_S = 90  # a trial whose process has not beaten for this long is failed and queued again
MAX_RETRY = 3
STORAGE_ATTEMPTS = 5
FAILURES_IN_A_ROW = 3  # then the search stops: the config, not the sampled values, is what fails


@dataclass
class TuneOptions:
    config: str
    trials: int = 20
    seeds: int = 3
    jobs: int | None = None
    space: str | None = None
    storage: str | None = None
    study: str | None = None
    out: str | None = None
    max_env_steps: int | None = None
    overrides: list[str] = field(default_factory=list)
    objective: str = "steps"
    pruner: str = "median"
    recheck: int = 0  # the best trials trained again on fresh seeds once the search has its trials
    recheck_seeds: int | None = None  # default: --seeds


@dataclass
class Search:
    """Everything a trial needs, settled before the first one."""

    options: TuneOptions
    given: tuple[dict[str, Any], dict[str, Any]]
    compiled: dict[str, Any]  # plain values
    space: list[Entry]
    space_file: Path
    name: str
    folder: Path
    budget: int
    stop_value: float

    @property
    def seeds(self) -> list[int]:
        return list(range(self.options.seeds))

    @property
    def recheck_seeds(self) -> list[int]:
        """Seeds no trial of the search trained on."""
        first = self.options.seeds
        return list(range(first, first + (self.options.recheck_seeds or self.options.seeds)))

    def trial_dir(self, number: int) -> Path:
        return self.folder / "trials" / f"trial_{number:04d}"

    def run_dirs(self, number: int, seeds: list[int]) -> list[str]:
        return [str(run.run_dir.resolve()) for run in seed_runs(self.trial_dir(number), seeds)]

    def train(
        self, trial_number: int, seeds: list[int], params: dict[str, Any], check: Callable[[list[SeedRun]], None]
    ) -> list[SeedRun]:
        """The config with `params` trained on `seeds` into the trial's folder; stopped early if `check` raises."""
        trial_dir = self.trial_dir(trial_number)
        runs = seed_runs(trial_dir, seeds)
        options = self.options
        child = ["--config", options.config, "--runs-dir", str(trial_dir), "--max-env-steps", str(self.budget)]
        child += [f"--set={o}" for o in [*options.overrides, *as_overrides(params)]]
        run_seeds(runs, child, options.jobs or len(seeds), check, lambda text: print_line(f"  {text}"))
        return runs

    def outcome(self, runs: list[SeedRun]) -> tuple[float, dict[str, Any]]:
        """A finished set of seeds' score and what is recorded of it."""
        summaries = [s for s in (run.summary() for run in runs) if s is not None]
        objective = self.options.objective
        value = trial_value(objective, summaries, [curve_of(r) for r in runs], self.budget, self.stop_value)
        solved = sum(s["stop_reason"] == "stop_value" for s in summaries)
        stops = ", ".join(f"{s['env_steps']:,}" if s["stop_reason"] == "stop_value" else "-" for s in summaries)
        return value, {
            "env_steps": [int(s["env_steps"]) for s in summaries],
            "seeds_stopped": solved,
            "median_wall_seconds": round(statistics.median(float(s["wall_seconds"]) for s in summaries), 1),
            "summary": f"{describe(objective, value)}; {solved}/{len(runs)} seeds stopped ({stops})",
        }

    def settings(self) -> dict[str, Any]:
        """What must not change between the processes and sessions of one study."""
        return {
            "objective": self.options.objective,
            "max_env_steps": self.budget,
            "seeds": self.options.seeds,
            "space": sorted(entry.key for entry in self.space),
            "env_id": str(self.compiled["env"]["env_id"]),
        }


def prepare(options: TuneOptions) -> Search:
    """The config compiled once (its mistakes reported before any trial), the space checked against it."""
    plan = plan_run(TrainOptions(config=options.config, overrides=options.overrides), writes_run_folder=False)
    policy_type = str(plan.create.get("policy", {}).get("type", "dqn"))
    space_file = Path(options.space) if options.space else default_space_file(policy_type)
    compiled = dict(to_plain(plan.cfg))
    space = load_space(space_file, compiled)
    budget = options.max_env_steps or int(plan.cfg.dqnkit.max_env_steps or 0)
    if budget <= 0:
        raise UserError("the config sets no dqnkit.max_env_steps: give each run a budget with --max-env-steps")
    stop_value = float(plan.cfg.env.stop_value)
    if options.objective == "steps" and not math.isfinite(stop_value):
        raise UserError("--objective steps counts env steps to env.stop_value, which the config leaves unset")
    name = options.study or run_name(plan.main, options.config)
    if options.out is None:  # the name is the folder's too
        require_plain_name(name, "--study (without --out)")
    folder = Path(options.out) if options.out else Path("studies") / name
    writable_dir(folder, "--out" if options.out else "the study folder", create=False)
    return Search(options, (plan.main, plan.create), compiled, space, space_file, name, folder, budget, stop_value)


def open_storage(url: str) -> RDBStorage:
    """Optuna's RDB storage with heartbeats; one line naming the URL (password hidden) when it cannot be used."""
    import sqlalchemy

    engine_kwargs = {"connect_args": {"connect_timeout": 10}} if url.startswith("postgresql") else {}
    try:
        shown = sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError as e:
        raise UserError(f"--storage {url!r} is not a database URL (e.g. postgresql://user:pw@host/db)") from e
    make = functools.partial(
        RDBStorage,
        url,
        engine_kwargs=engine_kwargs,
        heartbeat_interval=HEARTBEAT_S,
        grace_period=GRACE_S,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
    )
    try:
        for _ in range(STORAGE_ATTEMPTS - 1):
            try:
                return make()
            except sqlalchemy.exc.IntegrityError:
                # Processes started together on an empty database race to create Optuna's tables: one wins.
                time.sleep(1.0 + random.random())
        return make()
    except (sqlalchemy.exc.SQLAlchemyError, ImportError) as e:
        cause = (str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"cannot open storage {shown}: {cause}") from e


def load_study(search: Search) -> optuna.Study:
    search.folder.mkdir(parents=True, exist_ok=True)
    url = search.options.storage or f"sqlite:///{(search.folder / 'study.db').resolve()}"
    storage = open_storage(url)
    startup = max(2, min(10, search.options.trials // 4))
    sampler = optuna.samplers.TPESampler(n_startup_trials=startup, multivariate=True, constant_liar=True)
    study = optuna.create_study(
        storage=storage,
        study_name=search.name,
        direction=OBJECTIVES[search.options.objective],
        sampler=sampler,
        pruner=_pruner(search.options.pruner, search.budget),
        load_if_exists=True,
    )
    _check_settings(study, search.settings())
    if not study.trials:
        _enqueue_baseline(study, search)
    return study


def _enqueue_baseline(study: optuna.Study, search: Search) -> None:
    """The config as given is the first trial: the search starts from it, and every trial compares with it."""
    values = config_values(search.space, search.compiled)
    if values is None:
        print("dqnkit: the config's own values lie outside the space: the search starts without them", file=sys.stderr)
        return
    study.enqueue_trial(values, user_attrs={"baseline": True}, skip_if_exists=True)


def _pruner(name: str, budget: int) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=budget // 4)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, budget // 10))
    return optuna.pruners.NopPruner()


def _check_settings(study: optuna.Study, settings: dict[str, Any]) -> None:
    recorded = study.user_attrs.get("dqnkit")
    if recorded is None:
        study.set_user_attr("dqnkit", settings)
        return
    for key, value in settings.items():
        if recorded.get(key) != value:
            raise UserError(
                f"study {study.study_name!r} was started with {key} {recorded.get(key)!r}, this command gives "
                f"{value!r}: run it as it was started, or name a new study with --study"
            )


@dataclass
class Objective:
    """Optuna's objective: train the sampled configuration on every seed and score the outcome."""

    search: Search
    study: optuna.Study
    failures_in_a_row: int = 0
    current: int | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        self.current = trial.number
        params = sample(self.search.space, trial)
        params.update(derived(self.search.compiled, params))
        trial.set_user_attr("config", params)  # the values the seeds trained with, derived ones included
        reporter = Reporter(trial, self.search.options.objective, self.search.stop_value, self.search.budget)
        head = self._head(trial.number)

        def check(started: list[SeedRun]) -> None:
            reporter(started)
            if sys.stderr.isatty():
                redraw(f"{head} | {status_line(started)}")

        given = " (the config as given)" if trial.user_attrs.get("baseline") else ""
        print_line(f"dqnkit: trial {trial.number}{given}: {shown_values(params)}")
        trial.set_user_attr("run_dirs", self.search.run_dirs(trial.number, self.search.seeds))
        try:
            runs = self.search.train(trial.number, self.search.seeds, params, check)
        except KeyboardInterrupt:
            trial.set_user_attr("failure", "interrupted; its values run again as a new trial")
            raise
        return self._score(trial, runs)

    def _head(self, number: int) -> str:
        done = report.finished_trials(self.study)
        best = report.best_trial(self.study)
        best_text = f"best {describe(self.search.options.objective, best.value)} (trial {best.number})" if best else ""
        return f"trial {number} | {len(done)}/{self.search.options.trials} done | {best_text}"

    def _score(self, trial: optuna.Trial, runs: list[SeedRun]) -> float:
        failed = failure(runs)
        if failed is not None:
            trial.set_user_attr("failure", failed)
            self.failures_in_a_row += 1
            if self.failures_in_a_row >= FAILURES_IN_A_ROW:
                raise UserError(f"{FAILURES_IN_A_ROW} trials in a row failed to train; the last one's {failed}")
            print_line(f"dqnkit: trial {trial.number} failed ({failed}); the search goes on")
            return math.nan
        self.failures_in_a_row = 0
        value, recorded = self.search.outcome(runs)
        for key, attr in recorded.items():
            trial.set_user_attr(key, attr)
        return value


def shown_values(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}" for key, value in params.items()
    )


def describe(objective: str, value: float | None) -> str:
    if value is None:
        return "-"
    if objective == "steps":
        return f"score {value:,.0f} env steps"
    return f"score {value:.1f} mean eval"


def tune(options: TuneOptions) -> int:
    """Run the study until it holds --trials completed or pruned trials; returns the exit code."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the heartbeat, TPE's options
    search = prepare(options)
    study = load_study(search)
    kept = "study.db" if options.storage is None else "shared storage"
    print(
        f"dqnkit: study {search.name!r} in {search.folder}/ ({kept}): "
        f"{options.trials} trials x {options.seeds} seeds, {search.budget:,} env steps each, space {search.space_file}",
        file=sys.stderr,
    )
    objective = Objective(search, study)
    reports = Reports(search)
    counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = [
        optuna.study.MaxTrialsCallback(options.trials, states=counted),
        functools.partial(_after_trial, search, reports),
    ]
    started = time.monotonic()
    try:
        with InterruptSignals():  # SIGTERM stops the study as Ctrl-C does
            if len(report.finished_trials(study)) < options.trials:
                study.optimize(objective, callbacks=callbacks, catch=())
            if options.recheck:
                recheck(search, study, reports)
    except KeyboardInterrupt:
        _queue_again(study, objective.current)
        reports.write(study)  # the interrupted trial ends after the last trial's callback wrote them
        raise
    if reports.notes is None:  # no trial ran here: the study already had --trials
        reports.write(study)
    for note in reports.notes or []:
        print(f"dqnkit: {note}", file=sys.stderr)
    _print_outcome(search, study, time.monotonic() - started)
    return 0


@dataclass
class Reports:
    """The study folder's files, rewritten after every trial; `notes`: why a plot was left out the last time."""

    search: Search
    notes: list[str] | None = None  # None until written

    def write(self, study: optuna.Study) -> None:
        self.notes = report.write_reports(study, self.search.folder, self.search.given, self.search.compiled)


def recheck(search: Search, study: optuna.Study, reports: Reports) -> None:
    """Train the search's best trials again on fresh seeds, each once: the scores that pick best_config.py."""
    done = report.rechecks(study)
    for number, record in done.items():
        if record["seeds"] != search.recheck_seeds:
            raise UserError(
                f"study {study.study_name!r} rechecked trial {number} on seeds {record['seeds']}, this command asks "
                f"for {search.recheck_seeds}: give --recheck-seeds {len(record['seeds'])}"
            )
    todo = [t for t in report.finalists(study, search.options.recheck) if t.number not in done]
    for i, trial in enumerate(todo, 1):
        _recheck_trial(search, study, trial, f"recheck {i}/{len(todo)}: trial {trial.number}")
        reports.write(study)


def _recheck_trial(search: Search, study: optuna.Study, trial: optuna.trial.FrozenTrial, head: str) -> None:
    seeds = search.recheck_seeds
    for seed in seeds:  # what an interrupted recheck of this trial left: it runs again whole
        shutil.rmtree(search.trial_dir(trial.number) / f"seed{seed}", ignore_errors=True)

    def check(started: list[SeedRun]) -> None:
        if sys.stderr.isatty():
            redraw(f"{head} | {status_line(started)}")

    print_line(f"dqnkit: {head} ({trial.user_attrs.get('summary', '')}) on fresh seeds {report.seed_range(seeds)}")
    try:
        runs = search.train(trial.number, seeds, trial.user_attrs.get("config", trial.params), check)
    except KeyboardInterrupt:
        print_line(f"dqnkit: the recheck of trial {trial.number} was interrupted; the same command runs it again")
        raise
    record: dict[str, Any] = {"seeds": seeds, "run_dirs": search.run_dirs(trial.number, seeds)}
    failed = failure(runs)
    if failed is None:
        value, recorded = search.outcome(runs)
        record.update(recorded, value=value)
    else:
        record["failure"] = failed
    study.set_user_attr(f"{report.RECHECK}{trial.number}", record)
    print_line(f"dqnkit: trial {trial.number} rechecked: {record.get('summary') or record['failure']}")


def _after_trial(search: Search, reports: Reports, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    text = trial.user_attrs.get("summary") or trial.user_attrs.get("failure") or ""
    if trial.state == optuna.trial.TrialState.PRUNED and trial.intermediate_values:
        step = max(trial.intermediate_values)
        value = trial.intermediate_values[step]
        there = (
            f"median evaluation {search.stop_value - value:.1f}, stop value {search.stop_value:g}"
            if search.options.objective == "steps"
            else (f"median mean evaluation {value:.1f} so far")
        )
        text = f"at {step:,} env steps: {there}"
    print_line(f"dqnkit: trial {trial.number} {trial.state.name.lower()}{': ' + text if text else ''}")
    reports.write(study)


def _queue_again(study: optuna.Study, number: int | None) -> None:
    """Ctrl-C failed the running trial: queue its values to run first next time."""
    if number is None:
        return
    trial = study.get_trials(deepcopy=False)[number]
    if trial.state == optuna.trial.TrialState.FAIL:
        RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(study, trial)
        print_line(f"dqnkit: trial {number} was interrupted; the same command runs its values again first")


def _print_outcome(search: Search, study: optuna.Study, seconds: float) -> None:
    from dqnkit.progress import format_duration

    trials = report.finished_trials(study)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)
    best = report.best_trial(study)
    if best is None:
        outcome = "no trial completed"
    else:
        rechecked = report.recheck_line(study, best.number)
        outcome = (
            f"best trial {best.number}: {best.user_attrs.get('summary', '')}; "
            + (f"on fresh {rechecked}; " if rechecked else "")
            + f"train it with: dqn-train --config {search.folder / report.BEST_CONFIG}"
        )
    print(
        f"dqnkit: study {search.name!r}: {len(trials)} trials ({pruned} pruned) in {format_duration(seconds)} here; "
        + outcome,
        file=sys.stderr,
    )
