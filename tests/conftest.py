"""Small deterministic environments for the tests, and the tests' grouping for parallel runs."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces


class CounterEnv(gym.Env):
    """Observation = [steps taken]; reward 1 per step; terminates at `terminate_at` (if set).

    With a `TimeLimit` wrapper the episode is truncated instead, so the true
    final observation of each episode is known in advance.
    """

    metadata = {"render_modes": []}

    def __init__(self, terminate_at=None, action_space=None):
        self.observation_space = spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = action_space or spaces.Discrete(2)
        self.terminate_at = terminate_at
        self.count = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.count = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        assert self.action_space.contains(action), action
        self.count += 1
        terminated = self.terminate_at is not None and self.count >= self.terminate_at
        return np.array([float(self.count)], np.float32), 1.0, terminated, False, {}


@pytest.fixture
def counter_env():
    """Factory of time-limited counter envs."""

    def make(max_episode_steps=3, terminate_at=None, action_space=None):
        return gym.wrappers.TimeLimit(CounterEnv(terminate_at, action_space), max_episode_steps)

    return make


def pytest_collection_modifyitems(config, items):
    """Puts the tests that start Ray clusters in one xdist group (`--dist loadgroup`): one worker runs them one
    after another, since two clusters at once on a small machine starve each other of CPUs."""
    for item in items:
        if item.get_closest_marker("ray"):
            item.add_marker(pytest.mark.xdist_group("ray"))
