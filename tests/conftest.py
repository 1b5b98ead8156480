"""Small deterministic environments for the tests, and the order the tests run in."""

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
    """Runs the tests of an xdist group first, so that under `-n 2 --dist loadgroup` one worker starts on the Ray
    cluster tests (which run one after another) while the other takes the rest."""
    items.sort(key=lambda item: item.get_closest_marker("xdist_group") is None)
