"""Vector environments from ids, `Env`s or `VectorEnv`s: made, labelled by copy and checked.

The spaces they may have, and their descriptions, are in `tfpg.space_descriptions`.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Union

import gymnasium as gym
import numpy as np

from tfpg.action_mask_entry import ActionMaskEntry  # noqa: F401  (public as tfpg.envs.ActionMaskEntry)
from tfpg.atari import is_atari, make_atari, register as register_atari
from tfpg.config import positive_int
from tfpg.errors import EnvCopyError
from tfpg.mask_observation import MaskObservation  # noqa: F401  (public as tfpg.envs.MaskObservation)
from tfpg.space_descriptions import describe_action_space, describe_observation_space

EnvLike = Union[str, gym.Env, gym.vector.VectorEnv]


def check_env_id(env_id: str) -> None:
    """Raises a `ValueError` naming the id if Gymnasium does not know it.

    Like `gymnasium.make`, an id "module:Name-v0" first imports `module`
    (which registers `Name-v0`).
    """
    module, _, name = env_id.rpartition(":")
    if is_atari(name):
        register_atari()
    if module:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(
                f"Environment id {env_id!r} names module {module!r}, which could not be imported ({error}). "
                f"Check the module path, or register the env before training."
            ) from None
    try:
        gym.spec(name)
    except gym.error.Error as error:
        raise ValueError(
            f"Unknown environment id {env_id!r}: {error}. Use a registered Gymnasium id such as "
            f"'CartPole-v1' or 'Hopper-v5' (see gymnasium.envs.registry)."
        ) from None


def observation_shape_mismatch(space: gym.Space, observation, where: str = "observation") -> str | None:
    """Where an observation's `Box` parts differ in shape from `space`'s, e.g. "observation['image'] has shape
    (4,), but its space declares (3,)"; None if they agree. Other leaves are not checked here."""
    if isinstance(space, gym.spaces.Box):
        shape = np.shape(observation)
        return None if shape == space.shape else f"{where} has shape {shape}, but its space declares {space.shape}"
    if isinstance(space, gym.spaces.Dict) and isinstance(observation, dict):
        parts = ((f"{where}[{key!r}]", part, observation.get(key)) for key, part in space.spaces.items())
    elif isinstance(space, gym.spaces.Tuple) and isinstance(observation, tuple) and len(observation) == len(space):
        parts = ((f"{where}[{index}]", part, value) for index, (part, value) in enumerate(zip(space, observation)))
    else:
        return None
    return next((found for found in (observation_shape_mismatch(part, value, name) for name, part, value in parts)
                 if found), None)


class LabelledCopy(gym.Wrapper):
    """Re-raises any exception of the wrapped env copy as an `EnvCopyError` naming the copy, and refuses an
    observation whose shape contradicts the copy's `observation_space`.

    Args:
        env: one env copy.
        index: its index in the vector env.
    """

    def __init__(self, env: gym.Env, index: int):
        super().__init__(env)
        self.index = index

    def _failure(self, call: str, error: Exception) -> EnvCopyError:
        return EnvCopyError(f"env copy {self.index} raised {type(error).__name__} in {call}: {error}")

    def _checked(self, call: str, result: tuple) -> tuple:
        mismatch = observation_shape_mismatch(self.observation_space, result[0])
        if mismatch:
            raise EnvCopyError(
                f"env copy {self.index} returned an observation from {call} that its observation_space "
                f"{self.observation_space} does not describe: {mismatch}. Make the env return what its space "
                f"declares, or declare the space it returns (an ObservationWrapper can reshape observations)")
        return result

    def step(self, action):
        try:
            result = self.env.step(action)
        except Exception as error:
            raise self._failure("step", error) from error
        return self._checked("step", result)

    def reset(self, **kwargs):
        try:
            result = self.env.reset(**kwargs)
        except Exception as error:
            raise self._failure("reset", error) from error
        return self._checked("reset", result)


# Evaluation stops an episode that has not ended after this many steps when the env has no time limit.
UNBOUNDED_EPISODE_LIMIT = 100_000


def episode_step_limit(env: gym.Env) -> int | None:
    """The step count after which evaluation gives up on an episode: None if the env has a `TimeLimit`
    (it ends the episode itself), else `UNBOUNDED_EPISODE_LIMIT`."""
    spec = getattr(env, "spec", None)
    limited = getattr(spec, "max_episode_steps", None) is not None
    wrapper = env
    while not limited and isinstance(wrapper, gym.Wrapper):
        limited = isinstance(wrapper, gym.wrappers.TimeLimit)
        wrapper = wrapper.env
    return None if limited else UNBOUNDED_EPISODE_LIMIT


def unending_episode_error(steps: int):
    """The `EnvError` for an episode that did not end within `steps` steps."""
    from tfpg.errors import EnvError

    return EnvError(f"The evaluation episode did not end within {steps} steps, and the env has no time limit. Wrap "
                    f"it in gymnasium.wrappers.TimeLimit(env, max_episode_steps=...), or register it with "
                    f"max_episode_steps.")


def make_env(env_id: str, **kwargs) -> gym.Env:
    """One env of an id: `gym.make`, or for `ALE/...` ids the standard Atari preprocessing (`tfpg.atari`).

    `kwargs` (such as `render_mode="rgb_array"`) go to `gym.make`.

    Raises:
        ValueError: the environment variable MUJOCO_GL holds a value MuJoCo does not accept (MuJoCo raises
            when a MuJoCo env's module is first imported).
    """
    try:
        return make_atari(env_id, **kwargs) if is_atari(env_id) else gym.make(env_id, **kwargs)
    except RuntimeError as error:
        if "MUJOCO_GL" not in str(error):
            raise
        raise ValueError(f"MuJoCo refuses the environment variable MUJOCO_GL={os.environ.get('MUJOCO_GL')!r} "
                         f"({error}): on Linux it takes egl, osmesa or glx, or 'disable'. Unset it to let tfpg "
                         f"choose (it renders MuJoCo videos headless with egl).") from None


def _labelled_copy(env_id: str, index: int) -> gym.Env:
    return LabelledCopy(make_env(env_id), index)


BACKENDS = ("gymnasium", "envpool")


def check_backend(env: EnvLike, backend: str, asynchronous: bool) -> None:
    """Raises a `ValueError` naming the fix if `backend` cannot step copies of `env`.

    Checked before anything is made (the launcher, and distributed collection
    before it starts workers, call it too).
    """
    if backend not in BACKENDS:
        raise ValueError(f"Unknown vector env backend {backend!r}; use one of {', '.join(map(repr, BACKENDS))}.")
    if backend != "envpool":
        return
    if not isinstance(env, str):
        raise ValueError(f"The envpool backend makes its envs from a Gymnasium id, got {type(env).__name__}.")
    if asynchronous:
        raise ValueError("EnvPool steps its copies in its own threads; drop asynchronous (--async_envs) with "
                         "the envpool backend.")
    from tfpg.envpool_backend import envpool_id

    envpool_id(env)


def make_vector_env(env: EnvLike, num_envs: int | None = None, asynchronous: bool = False,
                    first_copy: int = 0, backend: str = "gymnasium") -> gym.vector.VectorEnv:
    """Makes a same-step-autoreset vector env from an id, an `Env` or a `VectorEnv`.

    Args:
        env: a Gymnasium id, an `Env` (wrapped as a single-copy vector env), or
            a `VectorEnv` created with `autoreset_mode=AutoresetMode.SAME_STEP`.
        num_envs: copies to create from an id (default 1); for a `VectorEnv`, None
            or its own number of copies.
        asynchronous: run copies made from an id in subprocesses.
        first_copy: the index of the first copy made from an id, in error messages
            (a worker's copies are numbered among all the run's copies).
        backend: what steps copies made from an id: "gymnasium" (its sync or
            async vector env) or "envpool" (EnvPool's C++ threads, for the MuJoCo
            and Atari ids it has; see `tfpg.envpool_backend`).

    Returns:
        A `gymnasium.vector.VectorEnv`.

    Raises:
        ValueError: on an unknown id, a bad `num_envs`, or an unsupported env.
    """
    if isinstance(env, gym.vector.VectorEnv):
        if num_envs is not None and positive_int("num_envs", num_envs) != env.num_envs:
            raise ValueError(f"num_envs={num_envs} but the VectorEnv given has {env.num_envs} copies. Leave num_envs "
                             f"out (a VectorEnv brings its own copies), or make the VectorEnv with {num_envs}.")
    num_envs = positive_int("num_envs", 1 if num_envs is None else num_envs)
    check_backend(env, backend, asynchronous)
    if backend == "envpool":
        from tfpg.envpool_backend import EnvPoolVectorEnv  # EnvPool is an optional dependency
        return EnvPoolVectorEnv(env, num_envs)
    same_step = gym.vector.AutoresetMode.SAME_STEP
    if isinstance(env, str):
        check_env_id(env)
        copies = [functools.partial(_labelled_copy, env, first_copy + index) for index in range(num_envs)]
        vector_class = gym.vector.AsyncVectorEnv if asynchronous else gym.vector.SyncVectorEnv
        return vector_class(copies, autoreset_mode=same_step)
    if isinstance(env, gym.vector.VectorEnv):
        mode = env.metadata.get("autoreset_mode")
        if mode != same_step:
            raise ValueError(
                f"The vector env uses autoreset_mode={mode}; tfpg needs the true final observation "
                f"of every episode to bootstrap time limits. Create it with "
                f"autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP "
                f"(gym.make_vec(..., vector_kwargs={{'autoreset_mode': AutoresetMode.SAME_STEP}}))."
            )
        return env
    if isinstance(env, gym.Env):
        if num_envs != 1:
            raise ValueError(
                f"num_envs={num_envs} needs several env copies, but a single Env instance was given. "
                f"Pass the environment id instead, or a VectorEnv."
            )
        return gym.vector.SyncVectorEnv([lambda: LabelledCopy(env, 0)], autoreset_mode=same_step)
    raise ValueError(
        f"env must be a Gymnasium id (str), a gymnasium.Env or a gymnasium.vector.VectorEnv, "
        f"got {type(env).__name__}."
    )


def describe_env(vector_env: gym.vector.VectorEnv) -> tuple[dict, dict]:
    """Describes the single-copy observation and action spaces of a vector env."""
    return (
        describe_observation_space(vector_env.single_observation_space),
        describe_action_space(vector_env.single_action_space),
    )
