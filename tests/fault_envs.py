"""Registered envs that fail on purpose, usable by id (also as "tests.fault_envs:<id>" from subprocesses).

Each copy of a vector env is reset with seed `base + index`, so with an agent
seed of 0 the copy reset with seed 1 is env copy 1 in the first vector env.
"""

import os
import signal

import gymnasium as gym


class FailingCopy(gym.Wrapper):
    """CartPole whose copy 1 (or every copy) fails at its `fail_at`-th step: by raising, or by killing its own
    process."""

    def __init__(self, fail_at: int = 10, how: str = "raise", every_copy: bool = False):
        super().__init__(gym.make("CartPole-v1"))
        self.fail_at, self.how, self.every_copy = fail_at, how, every_copy
        self.copy, self.steps = None, 0

    def reset(self, *, seed=None, options=None):
        if self.copy is None:
            self.copy = seed
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        self.steps += 1
        if (self.copy == 1 or self.every_copy) and self.steps == self.fail_at:
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise ValueError("physics exploded")
        return self.env.step(action)


RAISING = "FailingCopy-v0"
KILLED = "KilledCopy-v0"
ALWAYS_KILLED = "AlwaysKilledCopy-v0"
gym.register(RAISING, entry_point=FailingCopy, max_episode_steps=500)
gym.register(KILLED, entry_point=FailingCopy, max_episode_steps=500, kwargs={"how": "kill"})
gym.register(ALWAYS_KILLED, entry_point=FailingCopy, max_episode_steps=500, kwargs={"how": "kill", "every_copy": True})
