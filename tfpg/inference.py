"""Acting without learning: observation checks, `predict` and `evaluate`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import tensorflow as tf

from tfpg.config import positive_int
from tfpg.envs import EnvLike, check_env_id, episode_step_limit, make_env, unending_episode_error
from tfpg.video import finish_recording, recorded_env, start_recording


class InferenceMixin:
    """`predict` and `evaluate`, mixed into `OnPolicyAgent` (which provides the models)."""

    def _check_observations(self, observations: Any) -> tuple[Any, bool]:
        if not self.built:
            raise ValueError("The agent is not built: call fit, collect or build first, or tfpg.load.")
        spec = self.observation_spec
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

    def predict(self, observations: Any, deterministic: bool = True) -> np.ndarray:
        """Env-ready actions for one observation or a batch.

        Args:
            observations: one observation (the space's shape) or a batch of them.
            deterministic: take the distribution's mode instead of sampling.

        Returns:
            NumPy actions (one, or a batch), clipped to Box bounds.
        """
        batch, single = self._check_observations(observations)
        tensor = self._as_model_input(batch)
        flat = (self._mode_fn if deterministic else self._sample_fn)(tensor).numpy()
        actions = self._action_adapter(flat)
        return actions[0] if single else actions

    def evaluate(self, env: EnvLike, episodes: int = 10, deterministic: bool = True,
                 video_dir: str | None = None) -> dict:
        """Runs whole episodes without updating anything.

        Args:
            env: a Gymnasium id or `Env` (evaluated one episode at a time).
            episodes: number of episodes.
            deterministic: act with the distribution's mode.
            video_dir: if given, every episode is recorded there as an MP4 (`tfpg.video`;
                needs `tfpg[video]`; an `Env` must have `render_mode="rgb_array"`).

        Returns:
            `{"mean_return", "std_return", "mean_length", "episodes", "returns", "lengths"}`, and
            `"videos"` (the paths written) with `video_dir`.
        """
        episodes = positive_int("episodes", episodes)
        prefix = f"{self.name}-evaluation"
        if isinstance(env, str):
            check_env_id(env)
            single = recorded_env(env, video_dir, prefix) if video_dir is not None else make_env(env)
        elif isinstance(env, gym.Env):
            single = start_recording(env, video_dir, prefix) if video_dir is not None else env
        else:
            raise ValueError(f"evaluate takes a Gymnasium id or an Env, got {type(env).__name__}.")
        recorder = single if video_dir is not None else None
        try:
            self.build(single.observation_space, single.action_space)
            returns, lengths = [], []
            limit = episode_step_limit(single)
            for episode in range(episodes):
                observation, _ = single.reset(seed=self.seed + 10_000 + episode)
                total, length, done = 0.0, 0, False
                while not done:
                    if limit is not None and length >= limit:
                        raise unending_episode_error(limit)
                    action = self.predict(observation, deterministic=deterministic)
                    observation, reward, terminated, truncated, _ = single.step(action)
                    total += float(reward)
                    length += 1
                    done = terminated or truncated
                returns.append(total)
                lengths.append(length)
        finally:
            videos = finish_recording(recorder) if recorder is not None else None
            if not isinstance(env, gym.Env):
                single.close()
        return {
            "mean_return": float(np.mean(returns)),
            "std_return": float(np.std(returns)),
            "mean_length": float(np.mean(lengths)),
            "episodes": episodes,
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
    if leaf.dtype == tf.uint8 and array.size and (array.min() < 0 or array.max() > 255):
        raise ValueError(f"Image {what.lower()} must be in [0, 255] (uint8 pixels), got values in "
                         f"[{array.min()}, {array.max()}].")
    if kind == "Discrete":
        low = leaf.description["start"]
        high = low + leaf.description["n"]
        if not np.issubdtype(array.dtype, np.integer) or np.any(array < low) or np.any(array >= high):
            raise ValueError(f"Discrete {what.lower()} must be integers in [{low}, {high}), got {array!r}.")
    return (array[None] if single else array), single
