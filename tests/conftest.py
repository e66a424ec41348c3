"""Shared fixtures: real CLI runs in subprocesses, and one CartPole agent trained once per test session."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
WALK_ENVS = REPO / "tests" / "envs" / "walkenvs.py"  # walkenvs:Walk, with a flaw where a test asks for one
BIN = Path(sys.executable).parent


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str, cwd: Path | None = None, timeout: float = 240, env: dict[str, str] | None = None) -> Result:
    """Run a dqnkit console script as a user would."""
    command, *rest = args
    full_env = {**os.environ, "SDL_VIDEODRIVER": os.environ.get("SDL_VIDEODRIVER", "dummy"), **(env or {})}
    proc = subprocess.run(
        [str(BIN / command), *rest],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def eval_without_torch(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """dqn-eval ARGS in a Python where torch and DI-engine cannot be imported (what an ONNX deployment has)."""
    code = f"""
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'ding'):
            raise ImportError(name + ' is blocked')
sys.meta_path.insert(0, _Block())
from dqnkit.cli import eval as ev
try:
    ev.main({args!r})
except SystemExit as e:
    assert e.code == 0, e.code
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


def help_without_heavy_imports(command: str, heavy: tuple[str, ...] = ("ding", "torch")) -> str:
    """`dqn-<command> --help` from its module, checked to import none of `heavy`; its text."""
    code = (
        f"import sys\nfrom dqnkit.cli import {command}\n"
        f"try:\n    {command}.main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"assert not set({heavy!r}) & set(sys.modules), 'heavy import on --help'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def assert_user_error(result: Result, *fragments: str) -> None:
    """Exit code 2, exactly one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def start_in_session(command: list[str], cwd: Path) -> subprocess.Popen[str]:
    """A command in its own session, as a terminal would run it (signals can go to the whole group)."""
    return subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "SDL_VIDEODRIVER": "dummy"},
    )


def start_train(args: list[str], cwd: Path, prefix: list[str] | None = None) -> subprocess.Popen[str]:
    """dqn-train in its own session; `prefix` runs it through another command (e.g. `ip netns exec NS`)."""
    return start_in_session([*(prefix or []), str(BIN / "dqn-train"), *args], cwd)


def wait_while_training(
    proc: subprocess.Popen[str], done: Callable[[], bool], failure: str, timeout: float = 120
) -> None:
    """Poll `done` until it holds; fail with the trainer's stderr if it exits first, or with `failure` after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        if done():
            return
        time.sleep(0.05)
    raise AssertionError(f"{failure} in {timeout} s")


def wait_for_rows(metrics: Path, rows: int, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    """Wait until training has written `rows` evaluations to metrics.csv."""
    wait_while_training(
        proc,
        lambda: metrics.is_file() and len(metrics.read_text().splitlines()) > rows,
        f"training did not reach {rows} evaluations",
        timeout,
    )


def all_checkpoints_load(run: Path) -> list[Path]:
    """The run folder's checkpoints, each loaded as dqnkit does (content checksum) and as torch does (weights only)."""
    import torch

    from dqnkit.checkpoint import load_checkpoint

    checkpoints = sorted(run.glob("*.pth.tar"))
    for path in checkpoints:
        load_checkpoint(path)
        torch.load(path, map_location="cpu", weights_only=True)
    return checkpoints


def session_processes(sid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "-s", str(sid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def wait_gone(sid: int, timeout: float = 20) -> list[int]:
    """The processes still alive in session `sid` after up to `timeout` seconds (empty: all gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and session_processes(sid):
        time.sleep(0.2)
    return session_processes(sid)


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A real tmpfs of `size` mounted at `path` (read-only: a filesystem that refuses writes, which root's permission
    bits do not give); the test is skipped where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"{'ro,' if read_only else ''}size={size}"
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # unpickling this would create the marker file
        return (open, (self.marker, "w"))


def hostile_checkpoint(path: Path, marker: Path) -> Path:
    """A file torch.load would accept only by unpickling an object whose loading creates `marker`."""
    import torch

    torch.save({"model": {}, "payload": _Exploit(str(marker))}, path, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    return path


def collect_cartpole(env_count: int, max_step: int, downstream: Callable[[Any, Any], list[Any]]) -> Any:
    """Run DI-engine's eps_greedy_handler and StepCollector (n_sample 32) on `env_count` seeded CartPole envs with
    nstep 3, followed by the middleware `downstream(cfg, task)` returns. Returns the compiled config."""
    return collect_transitions("cartpole.py", env_count, max_step, downstream)


def collect_transitions(
    config: str, env_count: int, max_step: int, downstream: Callable[[Any, Any], list[Any]], **env: Any
) -> Any:
    """Run DI-engine's eps_greedy_handler and StepCollector on `env_count` seeded envs of configs/`config` (with
    `env` keys set) with nstep 3, followed by the middleware `downstream(cfg, task)` returns. Returns the compiled
    config."""
    from ding.framework import task
    from ding.framework.context import OnlineRLContext
    from ding.framework.middleware import StepCollector, eps_greedy_handler
    from ding.policy import DQNPolicy
    from ding.utils import set_pkg_seed

    from dqnkit.config import compile_dqn_config, load_config_file
    from dqnkit.dingext.family import ALGORITHMS
    from dqnkit.train.pipeline import env_manager
    from dqnkit.train.plan import fill_env_facts

    set_pkg_seed(0)
    main, create = load_config_file(CONFIGS / config)
    main["policy"]["nstep"] = 3
    main["env"].update(env)
    fill_env_facts(main, [])
    cfg = compile_dqn_config(main, create, seed=0)
    policy = DQNPolicy(cfg.policy, model=ALGORITHMS["dqn"].new_model(cfg.policy.model))
    envs = env_manager(cfg, env_count)
    with task.start(ctx=OnlineRLContext()):
        envs.seed(0)
        envs.launch()
        task.use(eps_greedy_handler(cfg))
        task.use(StepCollector(cfg, policy.collect_mode, envs))
        for middleware in downstream(cfg, task):
            task.use(middleware)
        task.run(max_step=max_step)
        envs.close()
    return cfg


@pytest.fixture(scope="module")
def twin_buffers() -> tuple[Any, Any]:
    """DI-engine's DequeBuffer and dqnkit's ArrayReplayBuffer (200 transitions each), fed the same 300+ CartPole
    transitions by two data_pushers after dqnkit's 3-step enhancer: both have wrapped around."""
    from ding.data import DequeBuffer
    from ding.framework.middleware import data_pusher

    from dqnkit.dingext.nstep import nstep_reward_enhancer
    from dqnkit.dingext.replay import ArrayReplayBuffer

    deque_buffer, array_buffer = DequeBuffer(size=200), ArrayReplayBuffer(size=200)
    pushed: list[list[Any]] = []

    def feed(cfg: Any, task: Any) -> list[Any]:
        def keep(ctx: Any) -> None:
            pushed.append(list(ctx.trajectories))
            task.finish = sum(map(len, pushed)) >= 300

        def hand_over_again(ctx: Any) -> None:  # data_pusher consumed ctx.trajectories
            ctx.trajectories = pushed[-1]

        return [
            nstep_reward_enhancer(cfg),
            keep,
            data_pusher(cfg, deque_buffer),
            hand_over_again,
            data_pusher(cfg, array_buffer),
        ]

    collect_cartpole(2, 100, feed)
    assert deque_buffer.count() == array_buffer.count() == 200 < sum(map(len, pushed))
    return deque_buffer, array_buffer


@pytest.fixture(scope="session")
def trained_cartpole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CartPole run trained from the CLI to its stop value (about 15 s on 2 cores)."""
    workdir = tmp_path_factory.mktemp("trained")
    result = cli("dqn-train", "--config", str(CONFIGS / "cartpole.py"), "--exp-name", "cp", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (workdir / "dqn-train.stderr").write_text(result.stderr)  # what the user saw
    run_dir = workdir / "runs" / "cp"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "stop_value", summary
    return run_dir


@pytest.fixture(scope="session")
def exported_cartpole(trained_cartpole: Path) -> Path:
    """model.pt, model.onnx and export.json of the trained CartPole agent."""
    result = cli("dqn-export", "--ckpt", str(trained_cartpole))
    assert result.returncode == 0, result.stderr
    return trained_cartpole / "export"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):
    """tiny_run('lunarlander.py') -> a run folder trained for a few hundred env steps (cached per config)."""
    cache: dict[str, Path] = {}

    def make(config: str) -> Path:
        if config not in cache:
            workdir = tmp_path_factory.mktemp("tiny")
            result = cli(
                "dqn-train",
                "--config",
                str(CONFIGS / config),
                "--exp-name",
                "tiny",
                "--max-env-steps",
                "300",
                "--quiet",
                cwd=workdir,
            )
            assert result.returncode == 0, result.stderr
            cache[config] = workdir / "runs" / "tiny"
        return cache[config]

    return make


@pytest.fixture(autouse=True)
def _signal_handlers_restored() -> Iterator[None]:
    """A test that runs a command's main() in this process leaves its signal handlers behind: the next test, in any
    order, starts with pytest's own."""
    from dqnkit import signals

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    installed, hook = list(signals._installed), sys.unraisablehook
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)
    signals._installed[:] = installed
    sys.unraisablehook = hook
