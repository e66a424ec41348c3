"""A replay buffer for pixel observations that keeps each frame once.

A stack of 4 frames shares 3 of them with the step before, and a transition's next observation is a later step's
observation: DI-engine's buffers store both stacks of every transition (float32 after its Atari wrappers: ~226 KB a
transition). Here a transition holds the serial numbers of its frames in one ring of uint8 frames, and stacks are
rebuilt when a batch is sampled: about one 84x84 frame (7 KB) a transition, the same batches.
"""

from __future__ import annotations

import zlib
from collections import deque
from typing import Any

import numpy as np
import torch

from dqnkit.dingext.replay import ArrayReplayBuffer, filled_ring

STACKED = ("obs", "next_obs")
DEDUP_WINDOW = 4096  # frames: how far back a pushed frame is looked for among those already stored


class FrameReplayBuffer(ArrayReplayBuffer):
    """ArrayReplayBuffer (uniform replay, the same samples for the same `random` state) with `obs` and `next_obs`
    uint8 frame stacks [stack, height, width] stored as frames.

    A pushed frame equal to one stored in the last DEDUP_WINDOW frames is not stored again (found by a hash of its
    bytes, confirmed by comparing them). The frame ring holds `size + DEDUP_WINDOW` frames; a transition that still
    refers to an overwritten frame leaves the buffer (with about one new frame a transition, that happens only to
    transitions the ring of `size` transitions drops anyway)."""

    def __init__(self, size: int, window: int = DEDUP_WINDOW) -> None:
        super().__init__(size=size)
        self.window = window
        self.capacity = size + window
        self._empty_frames()

    def _empty_frames(self) -> None:
        self.frames = torch.empty(0, dtype=torch.uint8)
        self._frames_pushed = 0
        self._recent: dict[int, int] = {}  # hash of a frame's bytes -> serial of the newest stored such frame
        self._recent_order: deque[tuple[int, int]] = deque()  # (serial, hash), oldest first
        self._floors: torch.Tensor = torch.empty(0, dtype=torch.int64)  # per slot: the oldest frame it may use
        self._valid_from = 0  # transition serial: the oldest whose frames are all still held

    def push(self, data: Any, meta: dict[str, Any] | None = None) -> Any:
        values = dict(data._detach().detach() if hasattr(data, "_detach") else data)
        floor = self._frames_pushed - self.window  # no frame older than this is reused below
        for key in STACKED:
            stack = values.pop(key)
            if stack.dtype != torch.uint8 or stack.dim() != 3:
                raise ValueError(f"FrameReplayBuffer stores uint8 frame stacks, not {key} {stack.dtype} {stack.shape}")
            values[f"{key}_frames"] = torch.tensor([self._store(frame) for frame in stack], dtype=torch.int64)
        if not self._floors.numel():
            self._floors = torch.empty(self.size, dtype=torch.int64)
        self._floors[self._pushed % self.size] = floor
        item = super().push(values, meta)
        self._drop_overwritten()
        return item

    def _store(self, frame: torch.Tensor) -> int:
        """The serial of a stored frame equal to `frame`: a recent one, or `frame` stored now."""
        array = frame.numpy()
        key = hash(array.tobytes())
        serial = self._recent.get(key)
        if serial is not None and self._same_frame(serial % self.capacity, frame):
            return serial
        serial = self._frames_pushed
        self._write_frame(serial % self.capacity, frame)
        self._frames_pushed += 1
        self._recent[key] = serial
        self._recent_order.append((serial, key))
        while self._recent_order[0][0] < self._frames_pushed - self.window:
            old_serial, old_key = self._recent_order.popleft()
            if self._recent.get(old_key) == old_serial:
                del self._recent[old_key]
        return serial

    # The frame ring itself: a uint8 tensor here, compressed bytes in PackedFrameReplayBuffer.

    def _write_frame(self, slot: int, frame: torch.Tensor) -> None:
        if not self.frames.numel():
            self.frames = torch.empty((self.capacity, *frame.shape), dtype=torch.uint8)
        self.frames[slot] = frame

    def _same_frame(self, slot: int, frame: torch.Tensor) -> bool:
        return torch.equal(self.frames[slot], frame)

    def _frames_at(self, slots: torch.Tensor) -> torch.Tensor:
        return self.frames[slots]

    def _frames_state(self) -> dict[str, Any]:
        return {"frames": self.frames[: min(self._frames_pushed, self.capacity)].clone()}

    def _load_frames(self, state: dict[str, Any]) -> None:
        frames = state["frames"]
        self.frames = filled_ring(frames, self.capacity) if frames.numel() else torch.empty(0, dtype=torch.uint8)

    def held_frame_bytes(self) -> int:
        return min(self._frames_pushed, self.capacity) * (self.frames[0].numel() if self.frames.numel() else 0)

    def _drop_overwritten(self) -> None:
        """Transitions whose oldest usable frame was overwritten leave the buffer, oldest first (floors grow with
        the push order, so the ones left all hold their frames)."""
        oldest_held = self._frames_pushed - self.capacity
        start = max(self._valid_from, self._pushed - self.size)
        while start < self._pushed and int(self._floors[start % self.size]) < oldest_held:
            start += 1
        self._valid_from = start

    def count(self) -> int:
        return self._pushed - max(self._valid_from, self._pushed - self.size)

    def transition(self, slot: int) -> dict[str, torch.Tensor]:
        return self._rebuilt(super().transition(slot))

    def gather(self, slots: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._rebuilt(super().gather(slots))

    def _rebuilt(self, stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {key: value for key, value in stored.items() if not key.endswith("_frames")}
        for key in STACKED:
            out[key] = self._frames_at(stored[f"{key}_frames"] % self.capacity)
        return out

    def clear(self) -> None:
        super().clear()
        self._empty_frames()

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "window": self.window,
            **self._frames_state(),
            "frames_pushed": self._frames_pushed,
            "floors": self._floors[: min(self._pushed, self.size)].clone(),
            "valid_from": self._valid_from,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state.get("window", -1)) != self.window:
            raise ValueError("the saved buffer was not a frame buffer of the same layout")
        super().load_state_dict(state)
        self._load_frames(state)
        self._frames_pushed = int(state["frames_pushed"])
        floors = state["floors"]
        self._floors = filled_ring(floors, self.size) if floors.numel() else torch.empty(0, dtype=torch.int64)
        self._valid_from = int(state["valid_from"])
        self._recent.clear()  # frames pushed after a load are stored anew: correct, at most one window's worth
        self._recent_order.clear()


class PackedFrameReplayBuffer(FrameReplayBuffer):
    """FrameReplayBuffer with each frame compressed (zlib, level 1): Atari frames shrink 20-30 times, at the cost of
    decompressing a batch's frames when it is sampled (dqnkit.compress_frames; benchmarks/NOTES.md)."""

    def _empty_frames(self) -> None:
        super()._empty_frames()
        self.packed: list[bytes] = []
        self.frame_shape: tuple[int, ...] = ()

    def _write_frame(self, slot: int, frame: torch.Tensor) -> None:
        if not self.packed:
            self.packed = [b""] * self.capacity
            self.frame_shape = tuple(frame.shape)
        self.packed[slot] = zlib.compress(frame.numpy().tobytes(), 1)

    def _same_frame(self, slot: int, frame: torch.Tensor) -> bool:
        return self.packed[slot] == zlib.compress(frame.numpy().tobytes(), 1)  # the same bytes pack the same

    def _frames_at(self, slots: torch.Tensor) -> torch.Tensor:
        wanted = slots.reshape(-1).tolist()
        unpacked = {slot: zlib.decompress(self.packed[slot]) for slot in set(wanted)}
        flat = np.frombuffer(b"".join(unpacked[slot] for slot in wanted), dtype=np.uint8)
        return torch.from_numpy(flat.reshape(*slots.shape, *self.frame_shape).copy())

    def _frames_state(self) -> dict[str, Any]:
        held = self.packed[: min(self._frames_pushed, self.capacity)]
        return {
            "packed": torch.frombuffer(bytearray(b"".join(held)), dtype=torch.uint8) if held else torch.empty(0),
            "packed_lengths": torch.tensor([len(p) for p in held], dtype=torch.int64),
            "frame_shape": list(self.frame_shape),
        }

    def _load_frames(self, state: dict[str, Any]) -> None:
        blob = state["packed"].numpy().tobytes()
        ends = np.cumsum(state["packed_lengths"].numpy()).tolist()
        held = [blob[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
        self.packed = held + [b""] * (self.capacity - len(held)) if held else []
        self.frame_shape = tuple(int(x) for x in state["frame_shape"])

    def held_frame_bytes(self) -> int:
        return sum(len(p) for p in self.packed)
