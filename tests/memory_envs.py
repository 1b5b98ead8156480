"""Small envs that only a policy with memory can solve, for the recurrent-policy tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class CueEnv(gym.Env):
    """Remember the cue: the first observation shows a cue (−1 or +1), the next `delay` show 0, and the
    last action earns 1 if it names the cue (action 0 for −1, 1 for +1).

    A policy without memory sees 0 at the rewarded step whatever the cue, so its expected return is 0.5.
    """

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, delay: int = 3):
        self.delay = delay

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cue = int(self.np_random.integers(2))
        self.step_index = 0
        return np.array([2.0 * self.cue - 1.0], np.float32), {}

    def step(self, action):
        self.step_index += 1
        if self.step_index <= self.delay:
            return np.zeros(1, np.float32), 0.0, False, False, {}
        return np.zeros(1, np.float32), float(int(action) == self.cue), True, False, {}


class FirstStepEnv(gym.Env):
    """Act 1 on an episode's first step and 0 after it, with every observation 0 and episodes that end at
    random (each step ends the episode with probability `end_probability`; nothing observable marks it).

    Each right action earns 1. Only a policy whose memory starts afresh with every episode can tell the
    first step: without memory, or with a state carried over from the last episode, the best a policy
    can do is always act 0 and earn 1 − `end_probability` of the steps' rewards on average.
    """

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, end_probability: float = 0.3, max_steps: int = 20):
        self.end_probability = end_probability
        self.max_steps = max_steps

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.step_index = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        reward = float(int(action) == (1 if self.step_index == 0 else 0))
        self.step_index += 1
        ended = bool(self.np_random.random() < self.end_probability)
        return np.zeros(1, np.float32), reward, ended, self.step_index >= self.max_steps and not ended, {}
