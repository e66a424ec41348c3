"""Run-folder names and files, in process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dqnkit import runfolder
from dqnkit.errors import UserError


def test_default_names_count_up_instead_of_overwriting(tmp_path: Path) -> None:
    first = runfolder.new_run_dir(tmp_path, None, "cartpole_dqn_seed0")
    assert first == tmp_path / "cartpole_dqn_seed0"
    first.mkdir()
    second = runfolder.new_run_dir(tmp_path, None, "cartpole_dqn_seed0")
    assert second == tmp_path / "cartpole_dqn_seed0_2"
    second.mkdir()
    assert runfolder.new_run_dir(tmp_path, None, "cartpole_dqn_seed0") == tmp_path / "cartpole_dqn_seed0_3"


def test_an_exp_name_is_a_new_or_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert runfolder.new_run_dir(tmp_path, "empty", "x") == tmp_path / "empty"
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "metrics.csv").write_text("")
    with pytest.raises(UserError, match="already exists; choose another --exp-name or continue it with --resume"):
        runfolder.new_run_dir(tmp_path, "used", "x")
    (tmp_path / "a_file").write_text("")
    with pytest.raises(UserError, match="is a file, not a folder"):
        runfolder.new_run_dir(tmp_path, "a_file", "x")
    for bad in ("", "a/b", "..", "."):
        with pytest.raises(UserError, match="plain folder name"):
            runfolder.new_run_dir(tmp_path, bad, "x")


def test_a_folder_given_for_a_checkpoint_means_its_best_or_its_newest(tmp_path: Path) -> None:
    for name in (runfolder.LATEST, runfolder.FINAL):
        (tmp_path / name).write_bytes(b"x")
    assert runfolder.resolve_checkpoint(tmp_path) == tmp_path / runfolder.FINAL  # no best: final next
    (tmp_path / runfolder.BEST).write_bytes(b"x")
    assert runfolder.resolve_checkpoint(tmp_path) == tmp_path / runfolder.BEST
    assert runfolder.checkpoints_newest_first(tmp_path)[0] == tmp_path / runfolder.FINAL
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no checkpoint"):
        runfolder.find_checkpoint(tmp_path / "empty")
    with pytest.raises(UserError, match="no such file or folder"):
        runfolder.resolve_checkpoint(tmp_path / "missing.pth.tar")


def test_the_newest_run_is_the_one_whose_checkpoint_was_written_last(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no model given and no"):
        runfolder.newest_run(tmp_path / "runs")
    for age, name in ((200, "old"), (100, "new")):
        run = tmp_path / "runs" / name
        run.mkdir(parents=True)
        (run / runfolder.FINAL).write_bytes(b"x")
        os.utime(run / runfolder.FINAL, (1e9 - age, 1e9 - age))
    (tmp_path / "runs" / "no_checkpoint").mkdir()
    assert runfolder.newest_run(tmp_path / "runs") == tmp_path / "runs" / "new"


def test_metrics_rows_read_back_as_numbers(tmp_path: Path) -> None:
    runfolder.start_metrics(tmp_path)
    runfolder.start_metrics(tmp_path)  # a resumed run keeps its rows and header
    runfolder.append_metrics(tmp_path, runfolder.MetricsRow(320, 0, 1.5, 9.5, 0.5, 9.0, 10.0, None))
    runfolder.append_metrics(tmp_path, runfolder.MetricsRow(960, 100, 3.25, 200.0, 1.0, 199.0, 201.0, 0.125))
    lines = (tmp_path / runfolder.METRICS).read_text().splitlines()
    assert lines[0] == ",".join(runfolder.METRICS_FIELDS)
    assert lines[1] == "320,0,1.500,9.5000,0.5000,9.0000,10.0000,"
    rows = runfolder.read_metrics(tmp_path)
    assert [r["env_step"] for r in rows] == [320.0, 960.0] and rows[1]["eval_max"] == 201.0


def test_malformed_or_missing_metrics(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"has no metrics.csv: is it a dqnkit run folder"):
        runfolder.read_metrics(tmp_path)
    (tmp_path / runfolder.METRICS).write_text("env_step,eval_mean\n1,x\n")
    with pytest.raises(UserError, match="malformed"):
        runfolder.read_metrics(tmp_path)


def test_config_files_record_the_given_and_compiled_config_and_every_command(tmp_path: Path) -> None:
    given = {"main_config": {"env": {"env_id": "CartPole-v1"}}, "create_config": {"policy": {"type": "dqn"}}}
    compiled = {"env": {"env_id": "CartPole-v1", "stop_value": float("inf")}}
    runfolder.write_config_files(tmp_path / "run", given, compiled, "dqn-train --config c.py")
    runfolder.write_config_files(tmp_path / "run", given, compiled, "dqn-train --resume run")
    run = tmp_path / "run"
    assert (run / runfolder.COMMAND).read_text().splitlines() == ["dqn-train --config c.py", "dqn-train --resume run"]
    assert runfolder.read_stop_value(run) is None  # infinite: no stop value to draw
    namespace: dict = {}
    exec((run / runfolder.COMPILED_PY).read_text(), namespace)
    assert namespace["main_config"]["env"]["env_id"] == "CartPole-v1"
    assert namespace["create_config"] == given["create_config"]
