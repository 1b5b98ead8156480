"""Small envs with actions that are illegal in some states, for the action-mask tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class LegalMovesEnv(gym.Env):
    """Each step a random half of the `n` actions are legal (the `action_mask` entry); `progress` is the
    fraction of the episode done.

    A legal action a earns (a + 1) / n; an illegal one ends the episode with −1. Episodes last `length` steps.
    The best policy takes the highest legal action: with the mask applied, a fixed preference for higher
    actions; without it, a function of the mask it must learn. Taking any legal action at random earns
    (n + 2) / (2n) per step on average (0.5625 for n = 8), the best one 0.9 for n = 8. `illegal_actions`
    counts the illegal actions taken since the env was made.
    """

    def __init__(self, n: int = 8, length: int = 16, mask_space: str = "box"):
        self.n, self.length = n, length
        mask = gym.spaces.Box(0, 1, (n,), np.int8) if mask_space == "box" else gym.spaces.MultiBinary(n)
        self.observation_space = gym.spaces.Dict({"progress": gym.spaces.Box(0, 1, (1,), np.float32),
                                                  "action_mask": mask})
        self.action_space = gym.spaces.Discrete(n)
        self.illegal_actions = 0

    def _observe(self):
        self.mask = np.zeros(self.n, np.int8)
        self.mask[self.np_random.permutation(self.n)[:self.n // 2]] = 1
        return {"progress": np.array([self.steps / self.length], np.float32), "action_mask": self.mask.copy()}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self._observe(), {}

    def action_masks(self) -> np.ndarray:
        """The legal actions now, as sb3-contrib's `MaskablePPO` asks for them."""
        return self.mask.astype(bool)

    def step(self, action):
        action = int(action)
        if not self.mask[action]:
            self.illegal_actions += 1
            return self._observe(), -1.0, True, False, {}
        self.steps += 1
        return self._observe(), (action + 1) / self.n, False, self.steps >= self.length, {}


class NothingAllowedEnv(LegalMovesEnv):
    """`LegalMovesEnv` whose mask allows nothing from step `at` of each episode on."""

    def __init__(self, at: int = 3):
        super().__init__()
        self.at = at

    def _observe(self):
        observation = super()._observe()
        if self.steps >= self.at:
            observation["action_mask"][:] = 0
        return observation


class MaskOutsideObservation(gym.Wrapper):
    """`LegalMovesEnv`'s game with its mask outside the observation (`progress` alone): in `info["action_mask"]`
    (`in_info`) or only from the env's `action_masks()`."""

    def __init__(self, env: LegalMovesEnv, in_info: bool):
        super().__init__(env)
        self.in_info = in_info
        self.observation_space = env.observation_space["progress"]

    def _info(self, observation, info):
        return {**info, "action_mask": observation["action_mask"]} if self.in_info else info

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        return observation["progress"], self._info(observation, info)

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation["progress"], reward, terminated, truncated, self._info(observation, info)
