"""Atari games through `ale-py` (ROMs included), with Gymnasium's standard preprocessing.

An id `ALE/<Game>-v5` is made with the emulator's own frame skipping off and
then wrapped as in the DQN and PPO Atari literature: up to 30 no-op actions at
reset, frame skip 4 (max-pooled over the last two frames), 84×84 grayscale, FIRE
pressed at the start of every life in the games that need it (`FireOnLifeStart`), and
the last 4 frames stacked, channels first (observations `uint8[4, 84, 84]`). The
id's other settings (sticky actions, full action set) are Gymnasium's for v5.
Needs the `atari` extra: `pip install "tfpg[atari]"`.
"""

from __future__ import annotations

import importlib.util

import gymnasium as gym

from tfpg.native_output import held_back

PREFIX = "ALE/"


def is_atari(env_id: str) -> bool:
    """Whether an env id names an Atari game of `ale-py`."""
    return env_id.startswith(PREFIX)


def register() -> None:
    """Registers ale-py's ids with Gymnasium.

    Raises:
        ValueError: if ale-py (or OpenCV, which the preprocessing needs) is not installed.
    """
    missing = [name for name in ("ale_py", "cv2") if importlib.util.find_spec(name) is None]
    if missing:  # (AtariPreprocessing resizes frames with OpenCV, cv2)
        raise ValueError(f"Atari ids need ale-py and OpenCV, and {' and '.join(missing)} could not be imported; "
                         f"install them with pip install \"tfpg[atari]\".")
    import ale_py

    gym.register_envs(ale_py)


class FireOnLifeStart(gym.Wrapper):
    """Presses FIRE at the start of every life, in games whose second action is FIRE (Breakout and others).

    In such games nothing happens until FIRE is pressed: without this, a deterministic policy that has not
    learned to press it plays every episode to the time limit (27,000 steps). The FIRE step's reward is
    added to the step that started the life, and its end of episode (if any) is that step's.

    Args:
        env: an Atari env whose `info` holds `lives` (ale-py's do).
    """

    FIRE = 1

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._lives = 0

    @staticmethod
    def applies(env: gym.Env) -> bool:
        """Whether the game has FIRE as its second action (the convention of the usual Atari wrappers)."""
        meanings = env.unwrapped.get_action_meanings()
        return len(meanings) >= 3 and meanings[FireOnLifeStart.FIRE] == "FIRE"

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        observation, _, terminated, truncated, info = self.env.step(self.FIRE)
        if terminated or truncated:  # (a game over on the first frames: start again, once)
            observation, info = self.env.reset(**kwargs)
        self._lives = info.get("lives", 0)
        return observation, info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        lives = info.get("lives", self._lives)
        if lives < self._lives and not (terminated or truncated):
            observation, fire_reward, terminated, truncated, info = self.env.step(self.FIRE)
            reward += fire_reward
        self._lives = info.get("lives", lives)
        return observation, reward, terminated, truncated, info


def make_atari(env_id: str, frame_stack: int = 4, **kwargs) -> gym.Env:
    """One preprocessed Atari env (see the module docstring); `kwargs` go to `gym.make`."""
    register()
    with held_back():  # the emulator prints its banner to stderr the first time a game is made
        env = gym.make(env_id, frameskip=1, **kwargs)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=True,
                                          terminal_on_life_loss=False, scale_obs=False)
    if FireOnLifeStart.applies(env):
        env = FireOnLifeStart(env)
    return gym.wrappers.FrameStackObservation(env, frame_stack)
