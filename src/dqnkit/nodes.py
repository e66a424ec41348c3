"""The nodes of a distributed run: who plays which role and where it listens.

As in DI-engine's ding/example/dqn.py, node 0 is the learner, node 1 the evaluator and every other node a collector.
Standard library only, so that dqn-train checks node options without importing DI-engine.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from dqnkit.errors import UserError

ROLES = ("learner", "evaluator", "collector")


@dataclass(frozen=True)
class Node:
    node_id: int
    role: str
    listen: str  # tcp://HOST:PORT
    attach_to: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.role} node {self.node_id}"


def default_role(node_id: int) -> str:
    return ROLES[min(node_id, 2)]


def tcp_address(text: str) -> tuple[str, int]:
    """'tcp://HOST:PORT' -> (HOST, PORT), or a UserError naming the bad address."""
    host, sep, port = text.removeprefix("tcp://").rpartition(":")
    if not text.startswith("tcp://") or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"bad node address {text!r}: expected tcp://HOST:PORT, e.g. tcp://10.0.0.4:50515")
    return host, int(port)


def _free_ports(count: int, host: str) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def local_mesh(workers: int, host: str = "127.0.0.1") -> list[Node]:
    """N nodes on this machine, fully connected (DI-engine's mesh topology): each dials every earlier node."""
    if workers < 3:
        raise UserError(f"--workers {workers}: needs at least 3 (a learner, an evaluator and a collector)")
    addresses = [f"tcp://{host}:{port}" for port in _free_ports(workers, host)]
    return [Node(i, default_role(i), addresses[i], tuple(addresses[:i])) for i in range(workers)]
