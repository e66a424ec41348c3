"""Your own environment: a Gymnasium env class in a module beside the config, unregistered, with no shapes in the
config, trained, exported and evaluated (ONNX too) from other folders: docs/custom-env.md's walkthrough."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import WALK_ENVS, assert_user_error, cli
from dqnkit.checkpoint import load_checkpoint

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    for name in ("corridor.py", "corridor.yaml"):
        shutil.copy(EXAMPLES / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def corridor_run(project: Path) -> Path:
    result = cli("dqn-train", "--config", "corridor.yaml", cwd=project)
    assert result.returncode == 0, result.stderr
    return project / "runs" / "corridor_seed0"


def test_a_custom_env_class_trains_exports_and_evaluates_from_anywhere(corridor_run: Path, tmp_path: Path) -> None:
    summary = json.loads((corridor_run / "summary.json").read_text())
    assert summary["stop_reason"] == "stop_value"  # the shortest way out
    config = yaml.safe_load((corridor_run / "config.yaml").read_text())
    assert config["env"]["import_root"] == str(corridor_run.parent.parent)
    assert config["env"]["kwargs"] == {"length": 6}
    assert config["policy"]["model"]["obs_shape"] == 2 and config["policy"]["model"]["action_shape"] == 2
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("dqn-export", "--ckpt", str(corridor_run), cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    meta = json.loads((corridor_run / "export" / "export.json").read_text())
    assert meta["env"]["env_id"] == "corridor:Corridor" and meta["env"]["kwargs"] == {"length": 6}
    returns = {}
    for model in (corridor_run / "best.pth.tar", corridor_run / "export" / "model.onnx"):
        out = tmp_path / f"{model.suffix}.json"
        result = cli("dqn-eval", str(model), "--episodes", "4", "--json", str(out), cwd=elsewhere)
        assert result.returncode == 0, result.stderr
        returns[model.suffix] = [e["episode_return"] for e in json.loads(out.read_text())["episodes"]]
    assert returns[".tar"] == returns[".onnx"] == [pytest.approx(0.5)] * 4


def _config_with(project: Path, env: dict[str, object]) -> str:
    config = yaml.safe_load((project / "corridor.yaml").read_text())
    config["main_config"]["env"].update(env)
    path = project / f"bad_{abs(hash(str(env)))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path.name


@pytest.mark.contract
@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        ({"env_id": "corridor:Coridor"}, ["defines no env class or registered id 'Coridor'", "corridor:Corridor"]),
        ({"env_id": "corridro:Corridor"}, ["no module 'corridro'"]),
        ({"kwargs": {"width": 3}}, ["does not take env.kwargs ['width']"]),
        (
            {"env_id": "gymnasium.envs.classic_control:Continuous_MountainCarEnv", "kwargs": {}},
            ["Box space", "Discrete"],
        ),
    ],
)
def test_a_custom_env_that_cannot_be_built_gets_one_line(
    project: Path, env: dict[str, object], fragments: list[str]
) -> None:
    result = cli("dqn-train", "--config", _config_with(project, env), cwd=project)
    assert_user_error(result, *fragments)


WALK_CONFIG = """\
main_config:
  exp_name: walk
  env: {env_id: "walkenvs:Walk", kwargs: {flaw: raise}, collector_env_num: 2, evaluator_env_num: 2,
        n_evaluator_episode: 2, stop_value: 100}
  policy:
    cuda: false
    model: {encoder_hidden_size_list: [32, 32]}
    learn: {batch_size: 16}
    collect: {n_sample: 16}
  dqnkit: {max_env_steps: 2000}
create_config:
  env_manager: {type: base}
  policy: {type: dqn}
"""


@pytest.mark.parametrize("manager", ["base", "subprocess"])
def test_an_env_that_raises_stops_training_with_one_line_and_its_own_frames(tmp_path: Path, manager: str) -> None:
    """Not DI-engine's retry log, nor its worker's traceback text: which env raised what, where, then the env's own
    frames; exit 1 with the final checkpoint kept."""
    shutil.copy(WALK_ENVS, tmp_path / "walkenvs.py")
    (tmp_path / "walk.yaml").write_text(WALK_CONFIG)
    result = cli("dqn-train", "--config", "walk.yaml", "--exp-name", "w", "--env-manager", manager, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    said = "walkenvs:Walk raised ValueError: illegal move 1 at this position in step() at step 4 of an episode"
    lines = result.stderr.splitlines()
    error = [i for i, line in enumerate(lines) if line.startswith("dqn-train: error:")]
    assert len(error) == 1 and said in lines[error[0]], result.stderr
    assert lines[error[0] + 1 :] == [
        f'  File "{tmp_path / "walkenvs.py"}", line 37, in step',
        '    raise ValueError("illegal move 1 at this position")',
    ]
    assert "Traceback" not in result.stderr and "max retries" not in result.stderr
    run = tmp_path / "runs" / "w"
    assert json.loads((run / "summary.json").read_text())["failure"] == said
    assert load_checkpoint(run / "final.pth.tar")["env_step"] == 0
