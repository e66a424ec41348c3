"""Every check of a user's input before work starts: config values (in a planned run, in process) and output
paths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from conftest import CONFIGS, tmpfs
from dqnkit.errors import UserError
from dqnkit.validate import RANGES, Range, writable_dir, writable_file


def _plan(tmp_path: Path, *overrides: str, **options: object) -> None:
    from dqnkit.train.plan import TrainOptions, plan_run

    settings = {"config": str(CONFIGS / "cartpole.py"), "runs_dir": str(tmp_path / "runs"), **options}
    plan_run(TrainOptions(overrides=list(overrides), **settings))  # type: ignore[arg-type]


def _refused(tmp_path: Path, *overrides: str, fragments: tuple[str, ...], **options: object) -> None:
    """The planned run fails with one message holding every fragment, and leaves no run folder behind."""
    with pytest.raises(UserError) as refused:
        _plan(tmp_path, *overrides, **options)
    for fragment in fragments:
        assert fragment in str(refused.value), str(refused.value)
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a failed start left a run folder behind"


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("policy.learn.learning_rate=-0.001", ("policy.learn.learning_rate must be a number > 0", "not -0.001")),
        ("policy.learn.learning_rate=0", ("policy.learn.learning_rate", "> 0")),
        ("policy.learn.batch_size=0", ("policy.learn.batch_size must be a whole number >= 1", "not 0")),
        ("policy.other.replay_buffer.replay_buffer_size=-5", ("replay_buffer_size", ">= 1")),
        ("policy.other.replay_buffer.replay_buffer_size=16", ("must hold at least one batch", "batch_size 64")),
        ("env.collector_env_num=0", ("env.collector_env_num must be a whole number >= 1",)),
        ("env.evaluator_env_num=-1", ("env.evaluator_env_num",)),
        ("env.n_evaluator_episode=0", ("env.n_evaluator_episode",)),
        ("policy.eval.evaluator.eval_freq=0", ("policy.eval.evaluator.eval_freq",)),
        ("policy.other.eps.start=1.5", ("policy.other.eps.start must be a number from 0 to 1", "not 1.5")),
        ("policy.other.eps.end=-0.1", ("policy.other.eps.end",)),
        ("policy.other.eps.decay=0", ("policy.other.eps.decay must be a number > 0",)),
        ("policy.other.eps.type=expo", ("policy.other.eps.type must be one of exp, linear", "did you mean exp?")),
        ("policy.discount_factor=1.01", ("policy.discount_factor must be a number from 0 to 1",)),
        ("policy.nstep=0", ("policy.nstep",)),
        ("policy.collect.n_sample=0", ("policy.collect.n_sample",)),
        ("policy.learn.update_per_collect=0", ("policy.learn.update_per_collect",)),
        ("policy.learn.target_update_freq=0", ("policy.learn.target_update_freq",)),
        ("policy.learn.adam_eps=0", ("policy.learn.adam_eps must be a number > 0", "not 0")),
        ("policy.model.encoder_hidden_size_list=[128, 0]", ("encoder_hidden_size_list", "[128, 0]")),
        ("dqnkit.max_env_steps=0", ("dqnkit.max_env_steps must be a whole number >= 1 or null",)),
        ("dqnkit.save_freq=0", ("dqnkit.save_freq",)),
        ("dqnkit.keep_periodic=-1", ("dqnkit.keep_periodic must be a whole number >= 0",)),
        ("dqnkit.log_freq=0", ("dqnkit.log_freq",)),
        ("dqnkit.worker_timeout=0", ("dqnkit.worker_timeout must be a number > 0",)),
        ("dqnkit.torch_threads=0", ("dqnkit.torch_threads", "whole number >= 1", "not 0")),
        ("dqnkit.eval_lag=100", ("dqnkit.eval_lag", "from 0 to eval_freq - 1 (99)", "not 100")),
        ("policy.learn.td_target=munchhausen", ("policy.learn.td_target", "double_dqn, munchausen", "munchausen?")),
        ("env.env_id=CartPol-v1", ("unknown environment id", "CartPole-v1")),
    ],
)
def test_out_of_range_values_are_refused_before_any_work(tmp_path: Path, override: str, fragments: tuple) -> None:
    _refused(tmp_path, override, fragments=fragments)


def test_munchausen_parameters_are_checked_when_the_target_uses_them(tmp_path: Path) -> None:
    target = "policy.learn.td_target=munchausen"
    _refused(
        tmp_path, target, "policy.learn.munchausen_tau=0", fragments=("policy.learn.munchausen_tau", "> 0", "not 0.0")
    )
    _refused(tmp_path, target, "policy.learn.munchausen_alpha=-1", fragments=("policy.learn.munchausen_alpha", ">= 0"))
    _plan(tmp_path, "policy.learn.munchausen_tau=0")  # unused by the default target: not checked


def test_cuda_without_cuda(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _refused(tmp_path, device="cuda", fragments=("CUDA is not available",))


def test_unwritable_runs_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"--runs-dir .* is not writable: .*a_file is a file, not a folder"):
        _plan(tmp_path, runs_dir=str(blocker / "runs"))


def test_exp_name_must_be_a_folder_name_and_new(tmp_path: Path) -> None:
    _refused(tmp_path, exp_name="a/b", fragments=("--exp-name", "plain folder name"))
    (tmp_path / "runs" / "taken").mkdir(parents=True)
    (tmp_path / "runs" / "taken" / "metrics.csv").write_text("")
    with pytest.raises(UserError, match=r"already exists.*--resume"):
        _plan(tmp_path, exp_name="taken")


def test_every_shipped_config_passes(tmp_path: Path) -> None:
    for name in ("cartpole.py", "cartpole_plain.yaml", "lunarlander.py", "lunarlander_v3.py"):
        _plan(tmp_path, config=str(CONFIGS / name), exp_name=name.replace(".", "_"))


@pytest.mark.parametrize(
    ("allowed", "good", "bad"),
    [
        (Range(whole=True, low=1), [1, 10**9], [0, 1.0, True, None, "3", float("nan")]),
        (Range(whole=False, low=0, low_open=True), [1e-9, 3], [0, -1, float("nan"), False]),
        (Range(whole=False, low=0, high=1), [0, 0.5, 1], [-1e-9, 1.0001]),
        (Range(whole=True, low=1, nullable=True), [None, 5], [0]),
        (Range(whole=False), [float("inf"), -3.5], [float("nan"), "x"]),
    ],
)
def test_ranges_admit_exactly_their_values(allowed: Range, good: list, bad: list) -> None:
    assert all(allowed.admits(v) for v in good)
    assert not any(allowed.admits(v) for v in bad)


def test_every_range_describes_itself_in_words() -> None:
    assert RANGES["policy.other.eps.start"].describe() == "a number from 0 to 1"
    assert RANGES["policy.learn.target_theta"].describe() == "a number > 0 and <= 1"
    assert RANGES["dqnkit.max_env_steps"].describe() == "a whole number >= 1 or null"


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as path:
        yield path


def test_output_folders_that_cannot_be_written(tmp_path: Path, read_only_dir: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=r"--out .*file/export is not writable: .*file is a file, not a folder"):
        writable_dir(tmp_path / "file" / "export", "--out", create=False)
    with pytest.raises(UserError, match=r"--runs-dir .*file is a file, not a folder"):
        writable_dir(tmp_path / "file", "--runs-dir")
    with pytest.raises(UserError, match="Read-only file system"):
        writable_dir(read_only_dir / "runs", "--runs-dir")
    with pytest.raises(UserError, match="Read-only file system"):
        writable_dir(read_only_dir / "export", "--out", create=False)
    writable_dir(tmp_path / "new" / "export", "--out", create=False)
    assert not (tmp_path / "new").exists(), "a check that must not create created the folder"


def test_output_files_that_cannot_be_written(tmp_path: Path, read_only_dir: Path) -> None:
    (tmp_path / "file").write_text("")
    cases = [
        (tmp_path / "v.avi", ".mp4 or .gif"),
        (tmp_path / "missing" / "v.mp4", "does not exist"),
        (tmp_path / "file" / "v.mp4", "is not a folder"),
        (tmp_path, "that is a folder"),
        (read_only_dir / "v.mp4", "Read-only file system"),
    ]
    for path, fragment in cases:
        with pytest.raises(UserError, match=fragment):
            writable_file(path, "--video", (".mp4", ".gif") if path != tmp_path else None)
    writable_file(tmp_path / "v.mp4", "--video", (".mp4", ".gif"))
    assert not (tmp_path / "v.mp4").exists()


def test_model_shapes_left_out_are_the_envs(tmp_path: Path) -> None:
    from dqnkit.train.plan import TrainOptions, plan_run

    config = tmp_path / "acrobot.py"
    config.write_text(
        "import runpy\n"
        f"base = runpy.run_path({str(CONFIGS / 'cartpole.py')!r})\n"
        "main_config, create_config = base['main_config'], base['create_config']\n"
        "main_config.env.env_id = 'Acrobot-v1'\n"
        "del main_config.policy.model['obs_shape'], main_config.policy.model['action_shape']\n"
    )
    plan = plan_run(TrainOptions(config=str(config), runs_dir=str(tmp_path / "runs")))
    assert (plan.cfg.policy.model.obs_shape, plan.cfg.policy.model.action_shape) == (6, 3)


def test_shapes_that_do_not_fit_the_env_come_with_the_fix(tmp_path: Path) -> None:
    _refused(
        tmp_path,
        "env.env_id=Acrobot-v1",
        fragments=("has [6] and 3", "set policy.model.obs_shape=6 and action_shape=3, or leave both out"),
    )


def test_continuous_actions_are_refused_with_what_dqnkit_supports(tmp_path: Path) -> None:
    _refused(
        tmp_path, "env.env_id=Pendulum-v1", fragments=("Pendulum-v1 acts in a Box space", "needs Discrete actions")
    )


def test_a_key_dingengine_leaves_unset_is_named_not_a_traceback() -> None:
    from dqnkit.config import compile_dqn_config
    from dqnkit.validate import check_run_config

    cfg = compile_dqn_config({"env": {"env_id": "CartPole-v1"}}, {"policy": {"type": "dqn"}}, seed=0)
    with pytest.raises(UserError, match=r"the config sets no env.collector_env_num .*whole number >= 1"):
        check_run_config(cfg)
