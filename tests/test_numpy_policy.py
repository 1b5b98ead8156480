"""The NumPy mirror used for env stepping computes the same policy as the Keras model."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

import tfpg

RNG = np.random.default_rng(3)
SPACES = {
    "box": (gym.spaces.Box(-np.inf, np.inf, (2, 3), np.float32), gym.spaces.Box(-1.0, 1.0, (2,), np.float32)),
    "discrete": (gym.spaces.Discrete(6, start=2), gym.spaces.Discrete(3)),
    "multidiscrete": (gym.spaces.Box(-5.0, 5.0, (4,), np.float32), gym.spaces.MultiDiscrete([2, 5])),
    "multibinary": (gym.spaces.Box(-5.0, 5.0, (4,), np.float32), gym.spaces.MultiBinary(3)),
}


def _agent(kind, activation):
    agent = tfpg.A2C(seed=1, activation=activation, initial_log_std=-0.5)
    agent.build(*SPACES[kind])
    for variable in agent.policy.trainable_variables:  # weights far from the near-zero initial head
        variable.assign(RNG.normal(scale=0.7, size=variable.shape).astype(np.float32))
    if agent.observation_normalizer is not None:
        agent.observation_normalizer.update(tf.constant(RNG.normal(2.0, 3.0, size=(50, 6 if kind == "box" else 4))))
    agent._acting.mirror.refresh()
    return agent


def _observations(kind, count):
    space = SPACES[kind][0]
    space.seed(int(RNG.integers(1000)))
    return np.stack([space.sample() for _ in range(count)])


@pytest.mark.parametrize("kind", sorted(SPACES))
@pytest.mark.parametrize("activation", ["tanh", "relu", "elu", "silu"])
def test_the_mirror_mode_equals_the_keras_policy_mode(kind, activation):
    agent = _agent(kind, activation)
    observations = _observations(kind, 64)
    expected = agent._mode_fn(agent._as_model_input(observations)).numpy()
    actual = agent._acting.mirror.mode(observations)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    if kind == "box":
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)
    else:
        np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("kind", sorted(SPACES))
def test_mirror_samples_follow_the_keras_policy_distribution(kind):
    agent = _agent(kind, "tanh")
    observation = _observations(kind, 1)
    draws = 20000
    mirror = agent._acting.mirror
    noise = mirror.draw_noise(np.random.default_rng(0), draws)  # one step's noise for each of `draws` rows
    samples = mirror.sample(np.repeat(observation, draws, axis=0), noise)
    distribution = agent.policy(agent._as_model_input(observation))
    if kind == "box":
        mean, std = distribution.mean().numpy()[0], distribution.stddev().numpy()[0]
        # 4.5 standard errors: fails on a wrong mean or scale, not by chance
        assert np.all(np.abs(samples.mean(axis=0) - mean) < 4.5 * std / np.sqrt(draws))
        assert np.all(np.abs(samples.std(axis=0) - std) < 4.5 * std / np.sqrt(2 * draws))
        return
    inner = distribution.distribution
    if kind == "multibinary":
        probabilities = tf.sigmoid(inner.logits).numpy()[0]
        frequencies = samples.mean(axis=0)
    else:
        probabilities = tf.nn.softmax(inner.logits).numpy()[0]  # [D, K] (padded categories have p = 0)
        frequencies = np.stack([np.bincount(samples[:, d], minlength=probabilities.shape[1]) / draws
                                for d in range(probabilities.shape[0])])
    standard_errors = np.sqrt(probabilities * (1 - probabilities) / draws)
    assert np.all(np.abs(frequencies - probabilities) <= 4.5 * standard_errors + 1e-12)


def test_collection_acts_with_the_mirror_and_log_probs_come_from_the_keras_policy(monkeypatch):
    agent = tfpg.PPO(seed=0, rollout_steps=32)
    agent.build(gym.spaces.Box(-np.inf, np.inf, (3,), np.float32),
                gym.spaces.Box(-2.0, 2.0, (1,), np.float32))  # Pendulum's spaces
    monkeypatch.setattr(agent._acting, "_sample", None)  # no TensorFlow call per env step
    rollout = agent.collect("Pendulum-v1", 32)
    log_probs = agent.policy(agent._as_model_input(rollout.flat("observations"))).log_prob(rollout.flat("actions"))
    np.testing.assert_allclose(rollout.flat("log_probs"), log_probs.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(SPACES))
def test_copies_split_between_processes_act_exactly_as_one_vector_env(kind):
    # Each copy's noise comes from its own stream and each row is computed on its own, so the
    # actions of copies 0..4 do not depend on whether they are stepped as one batch or as 1 + 4.
    agent = _agent(kind, "tanh")
    seed, steps = np.array([7, 11], np.uint64), 6
    observations = [_observations(kind, 5) for _ in range(steps)]
    together = agent._acting.sampler(seed, steps, range(5))
    first, rest = agent._acting.sampler(seed, steps, range(0, 1)), agent._acting.sampler(seed, steps, range(1, 5))
    for batch in observations:
        whole = together(batch)
        np.testing.assert_array_equal(np.concatenate([first(batch[:1]), rest(batch[1:])]), whole)
    if kind == "box":  # (categorical policies with these weights are close to deterministic)
        other = agent._acting.sampler(np.array([7, 12], np.uint64), 1, range(5))
        assert not np.array_equal(other(observations[0]), agent._acting.sampler(seed, 1, range(5))(observations[0]))


def _dict_agent():
    """A PPO agent on a Dict of a Box, a Discrete and an action mask entry, with MultiDiscrete actions."""
    agent = tfpg.PPO(seed=1)
    agent.build(gym.spaces.Dict({"x": gym.spaces.Box(-5.0, 5.0, (2, 2), np.float32), "colour": gym.spaces.Discrete(3),
                                 "action_mask": gym.spaces.MultiBinary(7)}), gym.spaces.MultiDiscrete([3, 4]))
    for variable in agent.policy.trainable_variables:  # small enough that no allowed category is near-certain
        variable.assign(RNG.normal(scale=0.3, size=variable.shape).astype(np.float32))
    agent.observation_normalizer.get("x").update(tf.constant(RNG.normal(2.0, 3.0, size=(50, 4))))
    agent._acting.mirror.refresh()
    return agent


def _dict_observations(count):
    masks = (RNG.random((count, 7)) < 0.6).astype(np.int8)
    masks[:, [0, 3]] = 1  # each sub-action allows something
    return {"x": RNG.normal(size=(count, 2, 2)).astype(np.float32), "colour": RNG.integers(3, size=count),
            "action_mask": masks}


def test_the_mirror_acts_as_the_keras_policy_on_dict_observations_with_an_action_mask():
    agent = _dict_agent()
    mirror = agent._acting.mirror
    assert mirror is not None
    observations = _dict_observations(64)
    inputs = agent.observation_spec.model_input(observations)
    np.testing.assert_array_equal(mirror.mode(observations), agent._mode_fn(inputs).numpy())
    draws = 20000
    one = {key: np.repeat(value[:1], draws, axis=0) for key, value in observations.items()}
    samples = mirror.sample(one, mirror.draw_noise(np.random.default_rng(0), draws))
    probabilities = tf.nn.softmax(agent.policy(agent.observation_spec.model_input(
        {key: value[:1] for key, value in observations.items()})).distribution.logits).numpy()[0]
    frequencies = np.stack([np.bincount(samples[:, d], minlength=4) / draws for d in range(2)])
    standard_errors = np.sqrt(probabilities * (1 - probabilities) / draws)
    assert np.all(np.abs(frequencies - probabilities) <= 4.5 * standard_errors + 5 / draws)
    allowed = np.stack([np.pad(observations["action_mask"][0, :3], (0, 1)), observations["action_mask"][0, 3:]])
    assert allowed[[0, 1], samples].all() and not probabilities[allowed == 0].any()
