"""Acting without learning: the parts of `predict` and `evaluate` (observation checks, the evaluation env)."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import gymnasium as gym
import numpy as np
import tensorflow as tf

from tfpg.envs import EnvLike, check_env_id, make_env
from tfpg.observations import ObservationSpec
from tfpg.video import finish_recording, recorded_env, start_recording


def checked_observations(spec: ObservationSpec, observations: Any) -> tuple[Any, bool]:
    """`observations` as a batch of the spec's structure, and whether they were one observation.

    Raises:
        ValueError: the observations do not fit the observation space; the
            message names the entry, what it holds and what it should.
    """
    try:
        values = spec.flatten(observations)
    except ValueError as error:
        expected = spec.map(lambda leaf: f"<{leaf.description['type']} {list(leaf.shape)}>")
        raise ValueError(f"Observations must have the structure of the observation space, {expected}: "
                         f"{error}.") from None
    checked = [_checked_leaf(leaf, value) for leaf, value in zip(spec.leaves, values)]
    singles = {single for _, single in checked}
    if len(singles) > 1:
        raise ValueError("Some entries of the observations are single observations and some are batches; give "
                         "all entries one observation, or all a batch of the same size.")
    if len({len(array) for array, _ in checked}) > 1:
        raise ValueError(f"The entries of the observations hold batches of different sizes "
                         f"{[len(array) for array, _ in checked]}; give all entries the same batch size.")
    single = singles.pop()
    return tf.nest.pack_sequence_as(spec.structure, [array for array, _ in checked]), single


def checked_state(state: Any, episode_start: Any, rows: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A recurrent policy's `(state [rows, size], episode starts [rows])` for `predict`, as float32.

    With no state, every row starts an episode from zeros; with a state and no `episode_start`, no row does.

    Raises:
        ValueError: the state or the episode starts do not fit the batch, or the state is not finite.
    """
    if state is None:
        state = np.zeros((rows, size), np.float32)
        starts = np.ones(rows, np.float32) if episode_start is None else episode_start
    else:
        starts = np.zeros(rows, np.float32) if episode_start is None else episode_start
        try:
            state = np.asarray(state, np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"state must be the array predict returned, [batch, {size}] floats; got "
                             f"{type(state).__name__}.") from None
        if state.shape != (rows, size):
            raise ValueError(f"state has shape {state.shape}, but this policy's state for {rows} observation(s) is "
                             f"({rows}, {size}): pass the state predict returned for the same rows (or None to "
                             f"start new episodes).")
        if not np.isfinite(state).all():
            raise ValueError("state holds NaN or infinite values; pass the state predict returned.")
    starts = np.asarray(starts)
    if starts.ndim == 0:
        starts = np.full(rows, starts)
    if starts.shape != (rows,) or not (starts.dtype == bool or np.isin(starts, (0, 1)).all()):
        raise ValueError(f"episode_start must be a bool, or {rows} bools (one per observation), got "
                         f"{np.asarray(episode_start).tolist()!r}.")
    return state, starts.astype(np.float32)


@contextlib.contextmanager
def evaluation_env(env: EnvLike, video_dir: str | None, prefix: str) -> Iterator[tuple[gym.Env, list[str]]]:
    """The single env an evaluation plays, and the list the recorded videos' paths are added to on exit.

    An id is made into an env (closed on exit); an `Env` is used as given. With
    `video_dir`, every episode is recorded there as `<prefix>-...mp4`.

    Raises:
        ValueError: `env` is neither an id nor an `Env` (a `VectorEnv` is refused).
    """
    if isinstance(env, str):
        check_env_id(env)
        single = recorded_env(env, video_dir, prefix) if video_dir is not None else make_env(env)
    elif isinstance(env, gym.Env):
        single = start_recording(env, video_dir, prefix) if video_dir is not None else env
    else:
        raise ValueError(f"evaluate takes a Gymnasium id or an Env, got {type(env).__name__}.")
    videos: list[str] = []
    try:
        yield single, videos
    finally:
        if video_dir is not None:
            videos.extend(finish_recording(single))
        if not isinstance(env, gym.Env):
            single.close()


def episode_summary(returns: list[float], lengths: list[int], videos: list[str] | None = None) -> dict:
    """`{"mean_return", "std_return", "mean_length", "episodes", "returns", "lengths"}`, and `"videos"` if given."""
    return {
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "mean_length": float(np.mean(lengths)),
        "episodes": len(returns),
        "returns": returns,
        "lengths": lengths,
        **({"videos": videos} if videos is not None else {}),
    }


def _checked_leaf(leaf, observations: Any) -> tuple[np.ndarray, bool]:
    """One leaf's observations as a batch, and whether they were a single observation.

    Raises:
        ValueError: naming the leaf (for nested observations) and what it allows.
    """
    what = f"Observations {leaf.path!r}" if leaf.path else "Observations"
    try:
        array = np.asarray(observations)
    except Exception as error:  # ragged or exotic input
        raise ValueError(f"{what} could not be read as an array: {error}.") from None
    kind, expected = leaf.description["type"], leaf.shape
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{what} must be numeric, got dtype {array.dtype}.")
    single = array.shape == expected
    if not single and array.shape[1:] != expected:
        raise ValueError(
            f"{what} have shape {array.shape}; expected {expected} for one observation "
            f"or (batch, {', '.join(map(str, expected))}) for a batch."
        )
    if kind == "Box" and not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contain NaN or Inf values.")
    if leaf.dtype.is_integer and np.issubdtype(array.dtype, np.floating) and np.any(array != np.round(array)):
        scaled = " (they look scaled to [0, 1]; pass the frames as the env returns them: tfpg scales pixels inside " \
                 "the model)" if leaf.dtype == tf.uint8 and array.size and array.max() <= 1.0 else ""
        raise ValueError(f"{what} must hold whole numbers ({leaf.dtype.name} in the observation space), got floats "
                         f"with fractional parts{scaled}; converting them would truncate them.")
    if leaf.dtype == tf.uint8 and array.size and (array.min() < 0 or array.max() > 255):
        raise ValueError(f"Image {what.lower()} must be in [0, 255] (uint8 pixels), got values in "
                         f"[{array.min()}, {array.max()}].")
    if kind == "Discrete":
        low = leaf.description["start"]
        high = low + leaf.description["n"]
        if not np.issubdtype(array.dtype, np.integer) or np.any(array < low) or np.any(array >= high):
            raise ValueError(f"Discrete {what.lower()} must be integers in [{low}, {high}), got {array!r}.")
    return (array[None] if single else array), single
