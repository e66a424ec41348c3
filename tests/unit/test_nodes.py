"""Node addresses and dqn-train's distributed options, in process (no DI-engine needed to check them)."""

from __future__ import annotations

import pytest

from dqnkit.cli.train import main
from dqnkit.errors import UserError
from dqnkit.nodes import default_role, local_mesh, tcp_address


@pytest.mark.parametrize(
    ("text", "address"),
    [("tcp://10.0.0.4:50515", ("10.0.0.4", 50515)), ("tcp://host.example:1", ("host.example", 1))],
)
def test_addresses(text: str, address: tuple[str, int]) -> None:
    assert tcp_address(text) == address


@pytest.mark.parametrize(
    "text", ["10.0.0.4:50515", "tcp://10.0.0.4", "tcp://:80", "tcp://h:0", "tcp://h:70000", "tcp://h:x"]
)
def test_bad_addresses(text: str) -> None:
    with pytest.raises(UserError, match="expected tcp://HOST:PORT"):
        tcp_address(text)


def test_roles_and_the_local_mesh() -> None:
    assert [default_role(i) for i in range(5)] == ["learner", "evaluator", "collector", "collector", "collector"]
    nodes = local_mesh(4)
    assert [n.role for n in nodes] == ["learner", "evaluator", "collector", "collector"]
    assert all(n.attach_to == tuple(m.listen for m in nodes[: n.node_id]) for n in nodes)
    assert len({n.listen for n in nodes}) == 4
    with pytest.raises(UserError, match="needs at least 3"):
        local_mesh(2)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--workers", "3", "--node-id", "0"], "leave out --node-id"),
        (["--node-id", "0"], "--node-id needs --address and --ports"),
        (["--ports", "50515"], "need --node-id"),
        (["--node-id", "2", "--address", "127.0.0.1", "--ports", "50517"], "needs --attach-to"),
        (
            ["--node-id", "2", "--address", "127.0.0.1", "--ports", "50517", "--attach-to", "10.0.0.4:50515"],
            "expected tcp://HOST:PORT",
        ),
        (["--workers", "0"], "expected a positive integer"),
    ],
)
def test_distributed_option_mistakes_are_one_line(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--config", "configs/cartpole.py", *args])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], lines
