"""EnvPool as a vector env: its C++ thread pool behind Gymnasium's same-step autoreset interface.

EnvPool resets a finished copy on the step *after* its episode ended: that step
ignores the action and returns the first observation of the next episode with
reward 0. tfpg needs Gymnasium's `AutoresetMode.SAME_STEP` instead (the step that
ends an episode returns the next episode's first observation, and the true final
observation in `infos["final_obs"]`), so `EnvPoolVectorEnv` resets finished copies
at once, by id, which also spares the step EnvPool would waste on the reset.

MuJoCo ids are EnvPool's own reimplementations of Gymnasium's tasks (same
observations, rewards and time limits). `ALE/<Game>-v5` ids map to EnvPool's
`<Game>-v5` with the settings of `tfpg.atari` (sticky actions 0.25, 30 no-ops,
frame skip 4, 84×84 grayscale, 4 frames stacked channels first) and EnvPool's
FIRE reset, which presses FIRE when an episode starts (tfpg's own stack presses
it at the start of every life). Needs the `envpool` extra: `pip install "tfpg[envpool]"`.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import gymnasium as gym
import numpy as np

from tfpg.atari import PREFIX as ATARI_PREFIX

_ATARI_SETTINGS = {"repeat_action_probability": 0.25, "use_fire_reset": True, "noop_max": 30, "frame_skip": 4,
                   "img_height": 84, "img_width": 84, "gray_scale": True, "stack_num": 4,
                   "episodic_life": False, "reward_clip": False}


def envpool_id(env_id: str) -> tuple[str, dict]:
    """EnvPool's id and settings for a Gymnasium id.

    Raises:
        ValueError: if EnvPool is not installed or does not have the task.
    """
    if importlib.util.find_spec("envpool") is None:
        raise ValueError("The envpool backend needs EnvPool, which is not installed; install it with "
                         "pip install \"tfpg[envpool]\" (Python 3.11 or 3.12, Linux x86-64), or use the Gymnasium "
                         "backend.")
    import envpool

    name, settings = env_id, {}
    if env_id.startswith(ATARI_PREFIX):
        name, settings = env_id[len(ATARI_PREFIX):], dict(_ATARI_SETTINGS)
    if name not in envpool.list_all_envs():
        raise ValueError(f"EnvPool has no task {name!r} (from {env_id!r}); it has MuJoCo ids such as 'Hopper-v5' "
                         f"and Atari ids as 'ALE/Pong-v5'. Use the Gymnasium backend for this env.")
    return name, settings


def gymnasium_action_space(space: gym.spaces.Space) -> gym.spaces.Space:
    """The action space Gymnasium's version of a task declares for EnvPool's `space`.

    EnvPool declares its MuJoCo torques as float64 where Gymnasium's MuJoCo envs
    declare float32; reporting Gymnasium's space makes an agent trained on either
    backend act, evaluate and export against the other (actions are converted back
    to EnvPool's dtype when stepping).
    """
    if isinstance(space, gym.spaces.Box) and space.dtype == np.float64:
        return gym.spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32), space.shape, np.float32)
    return space


class EnvPoolVectorEnv(gym.vector.VectorEnv):
    """`num_envs` copies of a task in an EnvPool, with same-step autoreset (see the module docstring).

    Copy i is seeded with `seed + i`, as Gymnasium seeds its vector envs; a
    `reset(seed=s)` with another seed makes a new pool seeded with `s`.

    Args:
        env_id: a Gymnasium id that EnvPool has (see `envpool_id`).
        num_envs: copies.
        seed: seed of the first copy.
        **settings: EnvPool settings of the task (e.g. `max_episode_steps`), over tfpg's.
    """

    def __init__(self, env_id: str, num_envs: int, seed: int = 0, **settings):
        self.env_id = env_id
        self._name, self._settings = envpool_id(env_id)
        self._settings.update(settings)
        self.num_envs = num_envs
        self._seed = None
        self._make(seed)
        self.single_observation_space = self._pool.observation_space
        self._pool_action_dtype = getattr(self._pool.action_space, "dtype", None)
        self.single_action_space = gymnasium_action_space(self._pool.action_space)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def _make(self, seed: int) -> None:
        import envpool

        self._pool = envpool.make(self._name, env_type="gymnasium", num_envs=self.num_envs, seed=int(seed),
                                  **self._settings)
        self._seed = seed

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Resets every copy, or with `options={"reset_mask": mask}` the copies marked in `mask`.

        With a mask, the observations of the other copies are returned as zeros (as Gymnasium does).
        """
        if seed is not None and seed != self._seed:
            self._make(seed)
        mask = (options or {}).get("reset_mask")
        if mask is None:
            observations, _ = self._pool.reset()
            return observations, {}
        copies = np.flatnonzero(mask)
        observations = np.zeros((self.num_envs, *self.single_observation_space.shape),
                                self.single_observation_space.dtype)
        if len(copies):
            observations[copies] = self._reset_copies(copies)
        return observations, {}

    def _reset_copies(self, copies: np.ndarray) -> np.ndarray:
        """The first observations of new episodes of `copies` (ascending ids), in that order."""
        observations, info = self._pool.reset(np.asarray(copies, np.int32))
        return observations[np.argsort(info["env_id"])]

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Steps every copy; a copy whose episode ends returns its next episode's first observation."""
        observations, rewards, terminated, truncated, info = self._pool.step(
            np.asarray(actions, self._pool_action_dtype))
        order = np.argsort(info["env_id"])  # (the identity in EnvPool's synchronous mode)
        observations, rewards, terminated, truncated = observations[order], rewards[order], terminated[order], \
            truncated[order]
        done = terminated | truncated
        infos: dict = {}
        if done.any():
            ended = np.flatnonzero(done)
            final = np.empty(self.num_envs, object)
            for index in ended:
                final[index] = observations[index].copy()
            observations[ended] = self._reset_copies(ended)
            infos = {"final_obs": final, "_final_obs": done}
        return observations, rewards, terminated, truncated, infos

    def close_extras(self, **kwargs) -> None:
        self._pool = None
