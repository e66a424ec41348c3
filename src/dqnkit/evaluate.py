"""Evaluate an agent (dqnkit checkpoint, TorchScript model.pt or ONNX model.onnx) on seeded episodes.

Episode i always uses env seed `seed + i` and its own epsilon RNG, so the same seeds give the same returns from
every form of the same network, sequentially or spread over parallel envs. ONNX evaluation imports neither
torch nor DI-engine.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dqnkit.actions import explore, greedy
from dqnkit.atari import ATARI_EPSILON, atari_game, human_normalized
from dqnkit.envs import EnvRef, make_raw_env, require_fit
from dqnkit.errors import UserError
from dqnkit.runtime import Model, open_model
from dqnkit.validate import writable_file

VIDEO_SUFFIXES = (".mp4", ".gif")


# --- agents ------------------------------------------------------------------------------------------------------


# --- episodes ----------------------------------------------------------------------------------------------------


@dataclass
class Episode:
    index: int
    seed: int
    episode_return: float
    length: int
    outcome: str  # "landed", "crashed", "timeout" for LunarLander; "" where the env does not tell


@dataclass
class Report:
    model: str
    kind: str
    env_id: str
    episodes: list[Episode]
    seed: int
    epsilon: float
    reward_threshold: float | None
    wall_seconds: float
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "episodes"},
            "episodes": [asdict(e) for e in self.episodes],
        }


def episode_outcome(env: Any, terminated: bool) -> str:
    """LunarLander tells landed (lander at rest) from crashed (body contact or out of bounds); others don't."""
    unwrapped = env.unwrapped
    lander = getattr(unwrapped, "lander", None)
    if lander is None:
        return ""
    if not terminated:
        return "timeout"
    return "landed" if not lander.awake and not getattr(unwrapped, "game_over", False) else "crashed"


def mean_interval(values: list[float], confidence: float = 0.95) -> list[float] | None:
    """Student's t interval for the mean of `values` (None for fewer than two)."""
    from scipy import stats

    if len(values) < 2:
        return None
    mean, sem = statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))
    if sem == 0:
        return [mean, mean]
    low, high = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=sem)
    return [float(low), float(high)]


def proportion_interval(successes: int, trials: int, confidence: float = 0.95) -> list[float]:
    """Wilson's score interval for a success rate."""
    from scipy import stats

    interval = stats.binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return [float(interval.low), float(interval.high)]


def compare(a: Report, b: Report) -> dict[str, Any]:
    """B against A on the same seeded episodes: the paired difference of their returns, with its 95% interval."""
    if [e.seed for e in a.episodes] != [e.seed for e in b.episodes] or a.env_id != b.env_id:
        raise UserError(f"{a.model} and {b.model} did not play the same episodes: compare them on one env and seed")
    differences = [eb.episode_return - ea.episode_return for ea, eb in zip(a.episodes, b.episodes, strict=True)]
    return {
        "a": a.model,
        "b": b.model,
        "episodes": len(differences),
        "mean_difference": statistics.fmean(differences),
        "difference_ci95": mean_interval(differences),
        "b_better": sum(d > 0 for d in differences),
        "a_better": sum(d < 0 for d in differences),
    }


def summarize(episodes: list[Episode], threshold: float | None, wall_seconds: float) -> dict[str, Any]:
    returns = [e.episode_return for e in episodes]
    steps = sum(e.length for e in episodes)
    successes = sum(r >= threshold for r in returns) if threshold is not None else None
    return {
        "episodes": len(episodes),
        "mean": statistics.fmean(returns),
        "mean_ci95": mean_interval(returns),
        "std": statistics.pstdev(returns),
        "median": statistics.median(returns),
        "min": min(returns),
        "max": max(returns),
        "success_rate": successes / len(returns) if successes is not None else None,
        "success_rate_ci95": proportion_interval(successes, len(returns)) if successes is not None else None,
        "mean_length": steps / len(episodes),
        "env_steps": steps,
        "env_steps_per_second": steps / wall_seconds if wall_seconds > 0 else math.inf,
    }


class _Slot:
    """One env and the episode it is playing."""

    def __init__(self, env: Any, agent: Model) -> None:
        self.env = env
        self.agent = agent
        self.index = -1
        self.obs: np.ndarray | None = None
        self.total = 0.0
        self.length = 0
        self.rng: np.random.Generator | None = None

    def start(self, index: int, seed: int) -> None:
        out = self.env.reset(seed=seed)
        self.obs = self.agent.as_input(out[0] if isinstance(out, tuple) else out)
        self.index, self.total, self.length = index, 0.0, 0
        self.rng = np.random.default_rng(seed)


def run_episodes(
    agent: Model,
    env: EnvRef,
    *,
    episodes: int,
    seed: int,
    epsilon: float,
    n_envs: int = 1,
    frame_sink: Any = None,
    on_episode: Callable[[Episode], None] | None = None,
    agent_view: bool = False,
) -> tuple[list[Episode], float]:
    """Play `episodes` episodes; episode i uses seed+i. frame_sink (if any) gets every rgb frame (one env); Atari
    frames show the real screen, with `agent_view` the agent's 84x84 input beside it."""
    render_mode = "rgb_array" if frame_sink is not None else None
    n_envs = 1 if frame_sink is not None else max(1, min(n_envs, episodes))
    slots = [_Slot(make_raw_env(env, render_mode, agent_view), agent) for _ in range(n_envs)]
    n_actions = int(agent.meta["action_count"])
    results: list[Episode] = []
    next_episode = 0
    started = time.perf_counter()
    try:
        for slot in slots:
            slot.start(next_episode, seed + next_episode)
            next_episode += 1
            if frame_sink is not None:
                frame_sink.frame(slot.env.render(), slot.index, slot.total)
        active = list(slots)
        while active:
            batch = np.stack([s.obs for s in active])  # type: ignore[misc]
            best = greedy(agent.q_values(batch))
            still_active = []
            for slot, action in zip(active, best, strict=True):
                assert slot.rng is not None
                obs, reward, terminated, truncated, _ = slot.env.step(explore(action, epsilon, slot.rng, n_actions))
                slot.obs = agent.as_input(obs)
                slot.total += float(reward)
                slot.length += 1
                if frame_sink is not None:
                    frame_sink.frame(slot.env.render(), slot.index, slot.total)
                if not (terminated or truncated):
                    still_active.append(slot)
                    continue
                episode = Episode(
                    slot.index,
                    seed + slot.index,
                    slot.total,
                    slot.length,
                    episode_outcome(slot.env, bool(terminated)),
                )
                results.append(episode)
                if on_episode is not None:
                    on_episode(episode)
                if frame_sink is not None and frame_sink.closed:
                    continue
                if next_episode < episodes:
                    slot.start(next_episode, seed + next_episode)
                    next_episode += 1
                    if frame_sink is not None:
                        frame_sink.frame(slot.env.render(), slot.index, slot.total)
                    still_active.append(slot)
            active = still_active
    finally:
        for slot in slots:
            slot.env.close()
    results.sort(key=lambda e: e.index)
    return results, time.perf_counter() - started


# --- watching and recording --------------------------------------------------------------------------------------


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class VideoWriter:
    """MP4 (imageio-ffmpeg) or GIF by extension, written to a temporary name and renamed when complete."""

    def __init__(self, path: Path, fps: int) -> None:
        import imageio.v2 as imageio

        self.path = path
        self.tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
        self.frames = 0
        self.closed = False
        if path.suffix == ".gif":
            self.writer = imageio.get_writer(self.tmp, mode="I", duration=1000 / fps, loop=0)
        else:
            self.writer = imageio.get_writer(self.tmp, fps=fps, codec="libx264", macro_block_size=8, quality=7)

    def frame(self, rgb: np.ndarray, episode: int, episode_return: float) -> None:
        rgb = np.asarray(rgb)
        # H.264 works on 8x8 blocks: pad (Atari's 210 rows) rather than let the writer rescale with a warning.
        height, width = (-rgb.shape[0]) % 8, (-rgb.shape[1]) % 8
        if height or width:
            rgb = np.pad(rgb, ((0, height), (0, width), (0, 0)))
        self.writer.append_data(rgb)
        self.frames += 1

    def finish(self) -> None:
        self.writer.close()
        self.tmp.replace(self.path)

    def abort(self) -> None:
        self.writer.close()
        self.tmp.unlink(missing_ok=True)


class Window:
    """A pygame window at the env's frame rate, showing the episode number and running return."""

    def __init__(self, title: str, fps: int) -> None:
        import pygame

        self.pygame = pygame
        pygame.display.init()
        pygame.font.init()
        pygame.display.set_caption(title)
        self.font = pygame.font.Font(None, 26)
        self.clock = pygame.time.Clock()
        self.fps = fps
        self.screen: Any = None
        self.closed = False
        self.frames = 0

    def frame(self, rgb: np.ndarray, episode: int, episode_return: float) -> None:
        pg = self.pygame
        if self.closed:
            return
        for event in pg.event.get():
            if event.type == pg.QUIT or (event.type == pg.KEYDOWN and event.key in (pg.K_ESCAPE, pg.K_q)):
                self.closed = True
                return
        height, width = rgb.shape[:2]
        if self.screen is None:
            self.screen = pg.display.set_mode((width, height))
        self.screen.blit(pg.surfarray.make_surface(np.ascontiguousarray(rgb.swapaxes(0, 1))), (0, 0))
        label = self.font.render(
            f"episode {episode + 1}   return {episode_return:8.1f}", True, (255, 255, 255), (0, 0, 0)
        )
        self.screen.blit(label, (8, 8))
        pg.display.flip()
        self.frames += 1
        self.clock.tick(self.fps)

    def finish(self) -> None:
        self.pygame.display.quit()

    abort = finish


def _inference_threads(agent: Model) -> AbstractContextManager[None]:
    """Torch agents play on one thread, as dqn-export checks them; ONNX Runtime keeps its own pool."""
    if agent.kind == "onnx":
        return nullcontext()
    from dqnkit.network import one_torch_thread

    return one_torch_thread()


def paired_agents(models: list[str | Path], env_id: str | None, config_path: str | Path | None) -> list[Model]:
    """The two models of a paired comparison, loaded and checked before either plays: they must play the same env
    (the one --env names, or the one both were trained on) with inputs and actions that fit it."""
    agents = [open_model(model, config_path) for model in models]
    envs = [agent.env_ref.with_id(env_id) if env_id else agent.env_ref for agent in agents]
    if envs[0].env_id != envs[1].env_id:
        raise UserError(
            f"{agents[0].path} plays {envs[0].env_id}, {agents[1].path} plays {envs[1].env_id}: a paired comparison "
            "needs two models of one env (or --env naming one both fit)"
        )
    for agent, env in zip(agents, envs, strict=True):
        require_fit(env, list(agent.meta["obs_shape"]), int(agent.meta["action_count"]), str(agent.path))
    return agents


def evaluate(
    model: str | Path | Model,
    *,
    env_id: str | None = None,
    episodes: int = 20,
    seed: int = 0,
    epsilon: float | None = None,
    n_envs: int = 1,
    render: bool = False,
    video: Path | None = None,
    on_episode: Callable[[Episode], None] | None = None,
    log: Callable[[str], None] = print,
    config_path: str | Path | None = None,
    agent_view: bool = False,
) -> Report:
    agent = model if isinstance(model, Model) else open_model(model, config_path)
    env = agent.env_ref.with_id(env_id) if env_id else agent.env_ref
    env_id = env.env_id
    require_fit(env, list(agent.meta["obs_shape"]), int(agent.meta["action_count"]), str(agent.path))
    if epsilon is None:
        epsilon = ATARI_EPSILON if env.atari else 0.0
    fps = int(agent.meta.get("render_fps") or 30)
    if render and not display_available() and video is None:
        video = Path(agent.path).parent / f"eval-{time.strftime('%Y%m%d-%H%M%S')}.mp4"
        log(f"no display found: recording to {video} instead of opening a window")
    if video is not None:
        writable_file(video, "--video", VIDEO_SUFFIXES)
    sink: Any = None
    if video is not None:
        # Off-screen rendering: keep SDL from looking for a display or a sound server.
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        sink = VideoWriter(video, fps)
    elif render:
        sink = Window(f"dqnkit: {env_id} ({Path(agent.path).name})", fps)
    try:
        with _inference_threads(agent):
            results, wall = run_episodes(
                agent,
                env,
                episodes=episodes,
                seed=seed,
                epsilon=epsilon,
                n_envs=n_envs,
                frame_sink=sink,
                on_episode=on_episode,
                agent_view=agent_view,
            )
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    if sink is not None:
        sink.finish()
        if video is not None:
            log(f"video: {video} ({sink.frames} frames at {fps} fps)")
    threshold = agent.meta.get("reward_threshold")
    report = Report(str(agent.path), agent.kind, env_id, results, seed, epsilon, threshold, wall)
    report.stats = summarize(results, threshold, wall) if results else {}
    game = atari_game(env_id)
    if results and game:
        report.stats["human_normalized"] = human_normalized(str(game), report.stats["mean"])
    return report
