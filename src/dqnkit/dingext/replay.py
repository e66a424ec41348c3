"""A replay buffer for DI-engine's data_pusher and OffPolicyLearner that stores transitions as rows of one tensor
per field, so that a sampled batch is gathered with one indexing per field instead of collated from 128 tree
tensors."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from ding.data import Buffer, BufferedData, DequeBuffer
from ding.data.buffer.middleware import PriorityExperienceReplay

from dqnkit.dingext.speedups import squeeze_single_column, tree_tensor


class ReplayRow:
    """One sampled transition: where it lives. `gather_rows` turns a list of them into a batch."""

    __slots__ = ("buffer", "slot")

    def __init__(self, buffer: ArrayReplayBuffer, slot: int) -> None:
        self.buffer = buffer
        self.slot = slot

    def __getitem__(self, field: str) -> torch.Tensor:
        return self.transition()[field]

    def transition(self) -> dict[str, torch.Tensor]:
        """The stored transition as the dict of tensors it was pushed as."""
        return self.buffer.transition(self.slot)


class ArrayReplayBuffer(Buffer):
    """DI-engine's DequeBuffer without its per-transition objects, for uniform replay.

    Samples the same transitions as DequeBuffer for the same state of Python's `random` (the same
    `random.sample` call over positions, oldest first), so training gives bit-for-bit DequeBuffer's results.
    A transition costs its tensors' bytes instead of a tree of tensors.
    Prioritized replay, which needs per-transition meta data and updates, uses DequeBuffer."""

    def __init__(self, size: int) -> None:
        super().__init__(size=size)
        self.fields: dict[str, torch.Tensor] = {}
        self._pushed = 0  # transitions ever pushed; the newest is at slot (_pushed - 1) % size

    def push(self, data: Any, meta: dict[str, Any] | None = None) -> BufferedData:
        values = data._detach().detach() if hasattr(data, "_detach") else data  # a tree tensor's plain dict
        if not self.fields:
            self.fields = {k: torch.empty((self.size, *v.shape), dtype=v.dtype) for k, v in values.items()}
        if values.keys() != self.fields.keys():
            raise ValueError(f"transition fields {sorted(values)} differ from the buffer's {sorted(self.fields)}")
        slot = self._pushed % self.size
        for key, value in values.items():
            self.fields[key][slot] = value
        self._pushed += 1
        return self._item(self._pushed - 1)

    def sample(self, size: int | None = None, **options: Any) -> list[BufferedData]:
        if options or size is None:
            raise TypeError(f"ArrayReplayBuffer samples a batch size only, not {sorted(options) or 'None'}")
        count = self.count()
        if size > count:
            raise ValueError(f"There are less than {size} records/groups in buffer({count})")
        oldest = self._pushed - count
        return [self._item(oldest + position) for position in random.sample(range(count), k=size)]

    def get(self, idx: int) -> BufferedData:
        """The transition at position `idx`, oldest first (as DequeBuffer.get)."""
        count = self.count()
        if not 0 <= idx < count:
            raise IndexError(f"position {idx} outside the buffer's {count} transitions")
        return self._item(self._pushed - count + idx)

    def _item(self, serial: int) -> BufferedData:
        """The `serial`-th transition ever pushed (still held)."""
        return BufferedData(data=ReplayRow(self, serial % self.size), index=str(serial), meta={})

    def count(self) -> int:
        return min(self._pushed, self.size)

    def clear(self) -> None:
        self.fields, self._pushed = {}, 0

    def update(self, index: str, data: Any | None = None, meta: dict[str, Any] | None = None) -> bool:
        raise TypeError("ArrayReplayBuffer keeps no per-transition meta data; prioritized replay uses DequeBuffer")

    def delete(self, index: str) -> None:
        raise TypeError("ArrayReplayBuffer is a ring: transitions leave it oldest first, not by index")

    def transition(self, slot: int) -> dict[str, torch.Tensor]:
        """The transition stored at `slot`, as pushed."""
        return {key: values[slot] for key, values in self.fields.items()}

    def gather(self, slots: torch.Tensor) -> dict[str, torch.Tensor]:
        """The transitions at `slots`, each field stacked along a new first dimension."""
        return {key: values[slots] for key, values in self.fields.items()}

    def save_data(self, file_name: str) -> None:
        torch.save(self.state_dict(), file_name)

    def load_data(self, file_name: str) -> None:
        self.load_state_dict(torch.load(file_name, weights_only=True))

    def state_dict(self) -> dict[str, Any]:
        """The slots written so far (a buffer not yet full saves only those), copied: torch.save of a slice would
        write the whole preallocated ring it views."""
        filled = min(self._pushed, self.size)
        fields = {key: values[:filled].clone() for key, values in self.fields.items()}
        return {"size": self.size, "fields": fields, "pushed": self._pushed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["size"]) != self.size:
            raise ValueError(f"the saved buffer holds {state['size']} transitions, this one {self.size}")
        self.fields = {key: filled_ring(values, self.size) for key, values in state["fields"].items()}
        self._pushed = int(state["pushed"])


def filled_ring(filled: torch.Tensor, size: int) -> torch.Tensor:
    """A ring of `size` rows whose first rows are `filled`."""
    ring = torch.empty((size, *filled.shape[1:]), dtype=filled.dtype)
    ring[: len(filled)] = filled
    return ring


def gather_rows(rows: list[ReplayRow]) -> dict[str, torch.Tensor]:
    """A batch of sampled rows as DI-engine's `default_collate` collates their transitions: each field stacked
    along a new first dimension, (B, 1) squeezed to (B,)."""
    slots = torch.tensor([row.slot for row in rows])
    return {key: squeeze_single_column(values) for key, values in rows[0].buffer.gather(slots).items()}


class PrioritizedReplayBuffer(DequeBuffer):
    """DI-engine's DequeBuffer with its PriorityExperienceReplay middleware, and a state that keeps what sampling
    depends on: the transitions oldest first, each one's weight in the sum tree (its priority to the power alpha) at
    the same place in the tree, the largest priority seen and the annealed importance-weight exponent."""

    def __init__(self, size: int, is_weight: bool) -> None:
        super().__init__(size=size)
        self.per = PriorityExperienceReplay(self, IS_weight=is_weight)
        self.use(self.per)

    def state_dict(self) -> dict[str, Any]:
        items = list(self.storage)
        stores = [item.data._detach().detach() if hasattr(item.data, "_detach") else item.data for item in items]
        # PriorityExperienceReplay writes each sampled transition's importance weight into it: not a field.
        keys = [key for key in stores[0] if key != "priority_IS"] if stores else []
        fields = {key: torch.stack([store[key] for store in stores]) for key in keys}
        weights = [self.per.sum_tree[item.meta["priority_idx"]] for item in items]
        return {
            "size": self.size,
            "fields": fields,
            "weights": torch.tensor(weights, dtype=torch.float64),
            "first_slot": int(items[0].meta["priority_idx"]) if items else 0,  # the tree's layout: where the oldest is
            "max_priority": float(self.per.max_priority),
            "is_weight_exponent": float(self.per.IS_weight_power_factor),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["size"]) != self.size:
            raise ValueError(f"the saved buffer holds {state['size']} transitions, this one {self.size}")
        if "weights" not in state:
            raise KeyError("no priorities were saved with these transitions")
        self.clear()
        fields, weights = state["fields"], state["weights"].numpy()
        first = int(state["first_slot"])
        self.per.pivot = first
        self.per._update_tree = lambda *_: None  # the trees are written whole below
        try:
            for row in range(len(weights)):
                self.push(tree_tensor({key: values[row] for key, values in fields.items()}))
        finally:
            del self.per._update_tree
        slots = (first + np.arange(len(weights))) % self.size
        trees = [self.per.sum_tree, *([self.per.min_tree] if self.per.IS_weight else [])]
        for tree in trees:
            set_leaves(tree, slots, weights)
        self.per.max_priority = float(state["max_priority"])
        self.per.IS_weight_power_factor = float(state["is_weight_exponent"])


def set_leaves(tree: Any, slots: np.ndarray, values: np.ndarray) -> None:
    """Leaves `slots` of one of DI-engine's segment trees set at once and every inner node recomputed from its two
    children, as setting them one by one leaves them (root at 1, node i's children at 2i and 2i + 1)."""
    tree.value[tree.capacity + slots] = values
    combine = np.add if tree.operation == "sum" else np.minimum
    level = tree.capacity
    while level > 1:
        level //= 2
        nodes = np.arange(level, 2 * level)
        tree.value[nodes] = combine(tree.value[2 * nodes], tree.value[2 * nodes + 1])
