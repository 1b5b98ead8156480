"""`ActionMaskEntry`: the action mask an env gives beside its observations, put into the observation.

tfpg reads action masks from an entry of a Dict observation (`tfpg.action_masks`). Some envs give them
elsewhere: in `info["action_mask"]`, or from a method `action_masks()` (the convention of sb3-contrib's
`MaskablePPO`). This wrapper reads `info["action_mask"]` where the info of the step or reset has it, else
calls `action_masks()`, and returns the observation as a Dict with the mask as one more entry.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def _mask_size(action_space: gym.Space) -> int:
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.MultiDiscrete):
        return int(np.sum(action_space.nvec))
    raise ValueError(f"Action masks apply to Discrete and MultiDiscrete actions; this env's action space is "
                     f"{action_space}.")


class ActionMaskEntry(gym.Wrapper):
    """Adds the env's action mask to its observation, as the entry `key` of a Dict observation.

    A Dict observation gets one more entry; any other becomes `{"observation": ..., key: ...}`. The mask is
    `info["action_mask"]` where the info has one, else the env's `action_masks()`, as int8 0/1 values
    (`MultiBinary(n)`: one per action of `Discrete(n)`, or sum(nvec) for `MultiDiscrete`).

    Args:
        env: an env with Discrete or MultiDiscrete actions that gives a mask in its info or by `action_masks()`.
        key: the name of the entry (the agent's `action_mask_key`).

    Raises:
        ValueError: for other actions, or a Dict observation that already has an entry `key` (the env then
            gives its mask in the observation: use it without this wrapper).
    """

    def __init__(self, env: gym.Env, key: str = "action_mask"):
        super().__init__(env)
        self.key = key
        self.size = _mask_size(env.action_space)
        space = env.observation_space
        mask = spaces.MultiBinary(self.size)
        if isinstance(space, spaces.Dict):
            if key in space.spaces:
                raise ValueError(f"The env's Dict observation already has an entry {key!r}: tfpg reads the mask "
                                 f"from it, without ActionMaskEntry.")
            self.observation_space = spaces.Dict({**space.spaces, key: mask})
        else:
            self.observation_space = spaces.Dict({"observation": space, key: mask})

    def _mask(self, info: dict) -> np.ndarray:
        if "action_mask" in info:
            mask, where = info["action_mask"], "info['action_mask']"
        else:
            try:
                method = self.env.get_wrapper_attr("action_masks")
            except AttributeError:
                raise ValueError("The env gave no action mask: its info has no 'action_mask' and it has no "
                                 "action_masks() method. Give the mask in one of these (or as a Dict "
                                 "observation entry).") from None
            mask, where = method(), "action_masks()"
        mask = np.asarray(mask)
        if mask.size != self.size:
            raise ValueError(f"The env's {where} has {mask.size} values, but its action space "
                             f"{self.env.action_space} needs {self.size} (one per category).")
        return np.reshape(mask, self.size).astype(np.int8)

    def _observation(self, observation: Any, info: dict) -> dict:
        mask = self._mask(info)
        if isinstance(self.env.observation_space, spaces.Dict):
            return {**observation, self.key: mask}
        return {"observation": observation, self.key: mask}

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        return self._observation(observation, info), info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        return self._observation(observation, info), reward, terminated, truncated, info
