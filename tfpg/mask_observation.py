"""`MaskObservation`: a task with some observation entries hidden, for partially observed versions of envs."""

from __future__ import annotations

from typing import Sequence

import gymnasium as gym
import numpy as np


class MaskObservation(gym.ObservationWrapper):
    """Keeps the entries `keep` of a vector (rank-1 `Box`) observation and hides the others.

    With the velocities hidden, CartPole (`keep=[0, 2]`: cart position, pole angle) or Pendulum
    (`keep=[0, 1]`: cos and sin of the angle) can only be solved by a policy that remembers earlier
    observations: the standard tests of recurrent policies.

        env = tfpg.envs.MaskObservation(gymnasium.make("CartPole-v1"), keep=[0, 2])

    To use such a task by id (the launcher, Ray workers, `tfpg.evaluate`), register it in a module and
    pass `module:Id`, e.g. `gymnasium.register("CartPoleNoVelocity-v1", lambda **kw:
    MaskObservation(gymnasium.make("CartPole-v1", **kw), keep=[0, 2]))`.

    Args:
        env: an env whose observation space is a rank-1 `Box`.
        keep: the indices of the entries kept, in the order given (negative indices count from the end).

    Raises:
        ValueError: if the observation space is not a rank-1 `Box`, or `keep` is empty, repeats an entry,
            or names an index outside the observation.
    """

    def __init__(self, env: gym.Env, keep: Sequence[int]):
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"MaskObservation hides entries of a vector observation (a rank-1 Box), but the env's "
                             f"observation space is {space}. For Dict observations, drop keys with Gymnasium's "
                             f"FilterObservation instead.")
        size = space.shape[0]
        if isinstance(keep, (str, bytes)) or not all(isinstance(index, (int, np.integer)) for index in keep):
            raise ValueError(f"keep must be a sequence of integer indices, got {keep!r}.")
        if len(keep) == 0:
            raise ValueError("keep is empty: MaskObservation must keep at least one entry.")
        outside = [int(index) for index in keep if not -size <= index < size]
        if outside:
            raise ValueError(f"keep names entries {outside} outside the observation of {size} entries "
                             f"(valid indices: 0..{size - 1}, or negative from the end).")
        positions = [int(index) % size for index in keep]
        if len(set(positions)) != len(positions):
            raise ValueError(f"keep={list(keep)} names an entry twice; name each kept entry once.")
        self.keep = np.asarray(positions, np.int64)
        self.observation_space = gym.spaces.Box(space.low[self.keep], space.high[self.keep], (len(positions),),
                                                space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """The kept entries of `observation`."""
        return np.asarray(observation)[self.keep]
