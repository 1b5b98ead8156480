"""Playing whole episodes with a fixed policy: the loop `evaluate` and the evaluation launcher share."""

from __future__ import annotations

import time
from typing import Any, Callable

import gymnasium as gym

from tfpg.envs import episode_step_limit, unending_episode_error
from tfpg.errors import EvaluationTimeout


def play_episodes(env: gym.Env, act: Callable[[Any, bool], Any], episodes: int,
                  first_seed: int, max_seconds: float | None = None) -> tuple[list[float], list[int]]:
    """Plays `episodes` episodes of `env`, acting with `act(observation, episode_start) -> action`
    (`episode_start`: whether the observation is the first of its episode).

    Episode k starts from `env.reset(seed=first_seed + k)`; its return is the
    undiscounted sum of its rewards.

    Args:
        env: a single (not vector) Gymnasium env.
        act: the action for one observation.
        episodes: number of episodes.
        first_seed: the reset seed of the first episode.
        max_seconds: if given, the time the whole evaluation may take.

    Returns:
        The return and the length of each episode.

    Raises:
        EnvError: an episode ran `UNBOUNDED_EPISODE_LIMIT` steps without ending
            in an env that has no time limit.
        EvaluationTimeout: the evaluation took more than `max_seconds` (it holds the finished episodes).
    """
    returns, lengths = [], []
    limit = episode_step_limit(env)
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    for episode in range(episodes):
        observation, _ = env.reset(seed=first_seed + episode)
        total, length, done, start = 0.0, 0, False, True
        while not done:
            if limit is not None and length >= limit:
                raise unending_episode_error(limit)
            if deadline is not None and time.monotonic() > deadline:
                raise EvaluationTimeout(returns, lengths, episode, length, max_seconds)
            observation, reward, terminated, truncated, _ = env.step(act(observation, start))
            start = False
            total += float(reward)
            length += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(length)
    return returns, lengths


def episode_actor(predict: Callable, deterministic: bool, recurrent: bool) -> Callable[[Any, bool], Any]:
    """`act(observation, episode_start) -> action` for `play_episodes` from an agent's `predict`, carrying a
    recurrent policy's state from step to step and starting it afresh with every episode."""
    if not recurrent:
        return lambda observation, episode_start: predict(observation, deterministic)
    state = None

    def act(observation, episode_start):
        nonlocal state
        action, state = predict(observation, deterministic, None if episode_start else state)
        return action

    return act
