"""Playing whole episodes with a fixed policy: the loop `evaluate` and the evaluation launcher share."""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym

from tfpg.envs import episode_step_limit, unending_episode_error


def play_episodes(env: gym.Env, act: Callable[[Any], Any], episodes: int,
                  first_seed: int) -> tuple[list[float], list[int]]:
    """Plays `episodes` episodes of `env`, acting with `act(observation) -> action`.

    Episode k starts from `env.reset(seed=first_seed + k)`; its return is the
    undiscounted sum of its rewards.

    Args:
        env: a single (not vector) Gymnasium env.
        act: the action for one observation.
        episodes: number of episodes.
        first_seed: the reset seed of the first episode.

    Returns:
        The return and the length of each episode.

    Raises:
        EnvError: an episode ran `UNBOUNDED_EPISODE_LIMIT` steps without ending
            in an env that has no time limit.
    """
    returns, lengths = [], []
    limit = episode_step_limit(env)
    for episode in range(episodes):
        observation, _ = env.reset(seed=first_seed + episode)
        total, length, done = 0.0, 0, False
        while not done:
            if limit is not None and length >= limit:
                raise unending_episode_error(limit)
            observation, reward, terminated, truncated, _ = env.step(act(observation))
            total += float(reward)
            length += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(length)
    return returns, lengths
