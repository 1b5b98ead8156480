"""Small image environments for the tests, learnable only by looking at the pixels."""

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class BrightSideEnv(gym.Env):
    """Each step shows a dark uint8 image with one bright vertical bar, in its left or right half.

    Action 0 (left) or 1 (right); reward 1 for naming the bar's side, 0 otherwise; episodes last
    `length` steps, so a policy that looks scores `length` and a blind one `length / 2` on average.

    Args:
        side: image height and width.
        channels_first: C×H×W images (else H×W×C).
        length: steps per episode.
        channels: image channels (each shows the same picture).
    """

    metadata = {"render_modes": []}

    def __init__(self, side=12, channels_first=False, length=8, channels=1):
        self.side, self.first, self.length, self.channels = side, channels_first, length, channels
        shape = (channels, side, side) if channels_first else (side, side, channels)
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.action_space = spaces.Discrete(2)

    def _observe(self):
        self.bar = int(self.np_random.integers(2))
        image = np.full((self.side, self.side), 20, np.uint8)
        half = self.side // 2
        column = int(self.np_random.integers(half)) + self.bar * half
        image[:, column] = 230
        return np.stack([image] * self.channels, axis=0 if self.first else -1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self._observe(), {}

    def step(self, action):
        reward = float(int(action) == self.bar)
        self.steps += 1
        return self._observe(), reward, False, self.steps >= self.length, {}


class LookAndListenEnv(BrightSideEnv):
    """A Dict observation, {"image": BrightSideEnv's picture, "flag": [±1]}, and four actions: the right one
    is the bar's side (0 left, 1 right) plus 2 when the flag is +1, so only a policy that uses both entries
    scores `length` (one that sees either alone scores `length / 2` on average, a blind one `length / 4`).

    Args:
        side: image height and width.
        length: steps per episode.
    """

    def __init__(self, side=12, length=8):
        super().__init__(side=side, length=length)
        self.observation_space = spaces.Dict({"image": self.observation_space,
                                              "flag": spaces.Box(-1.0, 1.0, (1,), np.float32)})
        self.action_space = spaces.Discrete(4)

    def _observe(self):
        image = super()._observe()
        self.flag = float(self.np_random.choice([-1.0, 1.0]))
        self.target = self.bar + (2 if self.flag > 0 else 0)
        return {"image": image, "flag": np.array([self.flag], np.float32)}

    def step(self, action):
        reward = float(int(action) == self.target)
        self.steps += 1
        return self._observe(), reward, False, self.steps >= self.length, {}


if "LookAndListen-v0" not in gym.registry:  # for the launchers: --env=tests.image_envs:LookAndListen-v0
    gym.register("LookAndListen-v0", entry_point=LookAndListenEnv)
