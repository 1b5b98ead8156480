"""Checkpoints and exported policies written by tfpg 0.1.0 (tests/data/tfpg-0.1.0, made by its
make_fixtures.py) still load, act the same, resume and serve."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import tfpg

DATA = os.path.join(os.path.dirname(__file__), "data", "tfpg-0.1.0")


def _expected(algorithm):
    with open(os.path.join(DATA, algorithm, "expected.json")) as file:
        return json.load(file)


@pytest.mark.parametrize("algorithm", ["ppo", "acktr", "trpo"])
def test_an_old_checkpoint_loads_acts_the_same_and_resumes(algorithm, tmp_path):
    expected = _expected(algorithm)
    agent = tfpg.load(os.path.join(DATA, algorithm, "checkpoints"))
    assert agent.name == algorithm and agent.total_steps == expected["total_steps"]
    observations = np.array(expected["observations"], np.float32)
    np.testing.assert_allclose(agent.predict(observations), expected["deterministic_actions"], rtol=1e-6)
    np.testing.assert_allclose(agent.value_model(observations).numpy(), expected["values"], rtol=1e-6)
    env = "CartPole-v1" if algorithm == "acktr" else "Pendulum-v1"
    agent.fit(env, steps=64, verbose=0)
    agent.save(str(tmp_path / "continued"))
    assert tfpg.load(str(tmp_path / "continued")).total_steps == agent.total_steps


def test_an_old_ppo_checkpoint_keeps_the_constant_rate_it_trained_with():
    # 0.1.0 recorded no learning_rate_schedule; PPO's default is now the linear schedule
    assert tfpg.PPO().config.learning_rate_schedule == "linear"
    agent = tfpg.load(os.path.join(DATA, "ppo", "checkpoints"))
    assert agent.config.learning_rate_schedule == "constant"
    rate = agent.config.learning_rate
    assert agent.fit("Pendulum-v1", steps=64, verbose=0).history["learning_rate"][-1] == pytest.approx(rate)


@pytest.mark.parametrize("algorithm", ["ppo", "acktr"])
def test_an_old_exported_policy_serves_the_same_actions(algorithm):
    expected = _expected(algorithm)
    policy = tf.saved_model.load(os.path.join(DATA, algorithm, "policy"))
    observations = tf.constant(expected["observations"], tf.float32)
    actions = policy.signatures["serving_default"](observations=observations)["actions"].numpy()
    np.testing.assert_allclose(actions, expected["deterministic_actions"], rtol=1e-6)
