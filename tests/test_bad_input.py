"""Malformed input from a seeded generator: every entry point answers with a clear ValueError."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import tfpg
from tfpg.algorithms import A2CConfig

RNG = np.random.default_rng(2026)
JUNK = [None, "x", -1, 0, 2.5, float("nan"), float("inf"), -1e300, True, [], {}, (1, "a"), object()]


def _observation_junk(shape):
    """Observations of the wrong shape, dtype or value for a Box of `shape`; none is valid."""
    cases = [np.zeros(()), np.zeros(shape[:-1] + (shape[-1] + 1,)), np.zeros((2, 3) + shape),
             np.full(shape, np.nan), np.full((4, *shape), np.inf), np.array(["a"] * shape[0]),
             np.zeros(shape, dtype=object), [[1.0, 2.0], [3.0]], "obs", None]
    for _ in range(20):
        random = RNG.normal(size=tuple(RNG.integers(1, 5, size=RNG.integers(1, 4))))
        if random.shape != shape and random.shape[1:] != shape:
            cases.append(random)
    return cases


@pytest.fixture(scope="module")
def agent():
    built = tfpg.A2C(seed=0)
    built.build(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (1,)))
    return built


def test_predict_rejects_malformed_observations(agent):
    for bad in _observation_junk((3,)):
        with pytest.raises(ValueError, match="[Oo]bservation"):
            agent.predict(bad)


def test_hyperparameters_reject_wrong_types_and_ranges():
    for field in dataclasses.fields(A2CConfig):
        for value in JUNK:
            if isinstance(value, type(field.default)) and not isinstance(value, bool) and value == value \
                    and field.default is not None and not isinstance(field.default, bool):
                continue  # may be a legal value of the right type
            if isinstance(field.default, bool) and isinstance(value, bool):
                continue
            if isinstance(field.default, float) and isinstance(value, int) and not isinstance(value, bool):
                continue  # ints are accepted for floats when in range; ranges are tested below
            with pytest.raises(ValueError, match=field.name):
                tfpg.A2C(**{field.name: value})
    for name, value in [("gamma", -0.1), ("gamma", 1.01), ("gae_lambda", 2.0), ("learning_rate", 0.0),
                        ("max_grad_norm", -1.0), ("rollout_steps", 0), ("value_coef", -1.0)]:
        with pytest.raises(ValueError, match=f"{name}={value}.*expected"):
            tfpg.A2C(**{name: value})


@pytest.mark.parametrize("seed", [-1, 2**31, 1.5, "0", None, True])
def test_seed_is_checked(seed):
    with pytest.raises(ValueError, match="seed must be an integer"):
        tfpg.A2C(seed=seed)


def test_collect_fit_and_evaluate_reject_bad_counts_and_envs(agent):
    for steps in [0, -3, 1.5, "10", None, True]:
        with pytest.raises(ValueError, match="steps must be a positive integer"):
            tfpg.A2C().collect("Pendulum-v1", steps)
        with pytest.raises(ValueError, match="steps must be a positive integer"):
            tfpg.A2C().fit("Pendulum-v1", steps, verbose=0)
        with pytest.raises(ValueError, match="episodes must be a positive integer"):
            agent.evaluate("Pendulum-v1", episodes=steps)
    for env in [42, None, ["CartPole-v1"], "NotAnEnv-v0"]:
        with pytest.raises(ValueError, match="env|environment"):
            tfpg.A2C().collect(env, 8)
    with pytest.raises(ValueError, match="num_envs must be a positive integer"):
        tfpg.A2C().fit("CartPole-v1", 8, num_envs=0, verbose=0)
    with pytest.raises(ValueError, match="observation space"):
        agent.collect("CartPole-v1", 8)  # built for a 3-dimensional Box, CartPole has 4
