"""dqn-tune from the command line: a tiny CartPole study, Ctrl-C and continuing it, two processes sharing a study on
a real PostgreSQL server, and the one-line errors."""

from __future__ import annotations

import csv
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import BIN, CONFIGS, assert_user_error, cli, help_without_heavy_imports
from dqnkit.train.plan import TrainOptions, plan_run

TINY = ["--config", str(CONFIGS / "cartpole.py"), "--seeds", "2", "--max-env-steps", "3000"]


def trials(study_dir: Path) -> list[dict[str, str]]:
    with open(study_dir / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def params(row: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in row.items() if k.startswith("params_")}


@pytest.mark.slow
def test_a_stopped_study_stays_consistent_and_the_same_command_continues_it(tmp_path: Path) -> None:
    command = [str(BIN / "dqn-tune"), *TINY, "--trials", "1"]
    proc = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True)
    metrics = tmp_path / "studies/cartpole_dqn/trials/trial_0000/seed0/metrics.csv"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) > 2):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGTERM)  # to dqn-tune alone (a terminal's Ctrl-C would reach its runs too)
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 143, stderr
    assert "trial 0 was interrupted; the same command runs its values again first" in stderr
    for seed in (0, 1):  # dqn-tune stopped its runs, and they saved their final checkpoints
        summary = json.loads((metrics.parents[1] / f"seed{seed}" / "summary.json").read_text())
        assert summary["stop_reason"] in ("interrupted", "stop_value"), summary

    again = cli("dqn-tune", *TINY, "--trials", "1", cwd=tmp_path, timeout=240)
    assert again.returncode == 0, again.stderr
    study = tmp_path / "studies/cartpole_dqn"
    rows = trials(study)
    assert [row["state"] for row in rows] == ["FAIL", "COMPLETE"] and "interrupted" in rows[0]["user_attrs_failure"]
    assert params(rows[1]) == params(rows[0])  # the interrupted values ran again, first
    for png in ("optimization_history.png", "best_trial_curves.png"):
        assert (study / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert "best trial" in again.stderr and f"dqn-train --config {Path('studies/cartpole_dqn/best_config.py')}" in (
        again.stderr
    )

    best = min((row for row in rows if row["state"] == "COMPLETE"), key=lambda row: float(row["value"]))
    plan = plan_run(TrainOptions(config=str(study / "best_config.py")), writes_run_folder=False)  # dqn-train's check
    assert plan.cfg.policy.learn.learning_rate == pytest.approx(float(best["params_policy.learn.learning_rate"]))
    assert plan.cfg.policy.nstep == int(best["params_policy.nstep"])
    assert plan.cfg.dqnkit.max_env_steps == 100_000  # the config's own budget, not the study's


@pytest.mark.slow
def test_a_recheck_picks_the_best_config_on_fresh_seeds_and_survives_a_stop(tmp_path: Path) -> None:
    args = ["--config", str(CONFIGS / "cartpole.py"), "--seeds", "1", "--max-env-steps", "3000", "--trials", "2"]
    args += ["--recheck", "2"]  # both trials, each on one fresh seed: seed 1
    proc = subprocess.Popen([str(BIN / "dqn-tune"), *args], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    study = tmp_path / "studies/cartpole_dqn"
    deadline = time.monotonic() + 180
    while not any(len(m.read_text().splitlines()) > 2 for m in study.glob("trials/*/seed1/metrics.csv")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGTERM)  # during the first recheck
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 143, stderr
    assert "was interrupted; the same command runs it again" in stderr

    again = cli("dqn-tune", *args, cwd=tmp_path, timeout=240)
    assert again.returncode == 0, again.stderr
    rows = trials(study)
    assert [row["state"] for row in rows] == ["COMPLETE", "COMPLETE"]  # the search was not run again
    rechecked = {int(row["number"]): float(row["recheck_value"]) for row in rows}
    for number in rechecked:
        summary = json.loads((study / f"trials/trial_{number:04d}/seed1/summary.json").read_text())
        assert summary["env_steps"] >= 3000 or summary["stop_reason"] == "stop_value", summary
    best = min(rechecked, key=lambda n: (rechecked[n], n))
    header = (study / "best_config.py").read_text().splitlines()[:3]
    assert f"trial {best}," in header[0] and header[2].startswith("# Rechecked on seeds 1: "), header
    assert f"best trial {best}: " in again.stderr and "on fresh seeds 1: " in again.stderr


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    assert found[-1], f"{name} not found: install PostgreSQL (.ci/run does)"
    return found[-1]


@pytest.fixture
def postgres() -> Iterator[str]:
    """A PostgreSQL server of the test's own on a free loopback port; its URL."""
    folder = Path(tempfile.mkdtemp(prefix="dqnkit-pg-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(folder, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", 45432 + os.getpid() % 1000
    subprocess.run(
        [*as_owner, _postgres_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "tune"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    ctl = [*as_owner, _postgres_bin("pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w"]
    subprocess.run([*ctl, "-o", options, "start"], check=True, capture_output=True)
    try:
        subprocess.run(
            [_postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "tune", "study"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://tune@127.0.0.1:{port}/study"
    finally:
        subprocess.run([*ctl, "stop", "-m", "immediate"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_two_processes_share_one_study_on_postgresql(tmp_path: Path, postgres: str) -> None:
    shared = [*TINY[:2], "--seeds", "1", "--max-env-steps", "1500", "--trials", "3", "--study", "shared"]
    command = [str(BIN / "dqn-tune"), *shared, "--storage", postgres]
    procs = [
        subprocess.Popen([*command, "--out", name], cwd=tmp_path, stderr=subprocess.PIPE, text=True) for name in "ab"
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    rows = trials(tmp_path / "a")
    numbers = [int(row["number"]) for row in rows]
    assert numbers == list(range(len(rows)))
    finished = [row for row in rows if row["state"] in ("COMPLETE", "PRUNED")]
    assert 3 <= len(finished) <= 4  # the last trial each process started may overshoot by one
    assert (tmp_path / "a" / "param_importances.png").read_bytes()[:4] == b"\x89PNG"
    ran = {name: {int(p.name.split("_")[1]) for p in (tmp_path / name / "trials").iterdir()} for name in "ab"}
    assert ran["a"] and ran["b"], ran  # both processes did trials of the study
    assert not ran["a"] & ran["b"] and ran["a"] | ran["b"] == set(numbers)  # each trial ran exactly once


@pytest.mark.contract
@pytest.mark.parametrize(
    ("space", "extra", "fragment"),
    [
        ("policy.learn.learning_rat: {low: 1.0e-4, high: 1.0e-3}\n", [], "did you mean policy.learn.learning_rate?"),
        ("policy.nstep: [1, 3\n", [], "is not valid YAML"),
        (None, ["--storage", "postgresql://nobody@127.0.0.1:1/none"], "cannot open storage postgresql://nobody@"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(tmp_path: Path, space: str | None, extra: list[str], fragment: str) -> None:
    if space is not None:
        (tmp_path / "space.yaml").write_text(space)
        extra = ["--space", "space.yaml"]
    result = cli("dqn-tune", *TINY, *extra, cwd=tmp_path, timeout=120)
    assert_user_error(result, fragment)
    assert not (tmp_path / "studies" / "cartpole_dqn" / "trials").exists()


@pytest.mark.contract
@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--out", "a_file"], "--out a_file is not writable: a_file is a file, not a folder"),
        (["--out", "a_file/study"], "--out a_file/study is not writable: a_file is a file, not a folder"),
        (["--study", "a/b"], "--study (without --out) 'a/b' must be a plain folder name"),
    ],
)
def test_output_path_mistakes_are_one_line_before_any_trial(tmp_path: Path, extra: list[str], fragment: str) -> None:
    (tmp_path / "a_file").write_text("")
    result = cli("dqn-tune", *TINY, *extra, cwd=tmp_path, timeout=120)
    assert_user_error(result, fragment)
    assert not list(tmp_path.glob("**/trials")), "a trial started"


@pytest.mark.contract
def test_help_names_every_option_and_imports_neither_ding_torch_nor_optuna() -> None:
    text = help_without_heavy_imports("tune", ("ding", "torch", "optuna"))
    flags = ("--trials", "--seeds", "--jobs", "--space", "--print-space", "--storage", "--study", "--out", "--recheck")
    for flag in flags:
        assert flag in text, flag
