"""Short learning runs with fixed seeds and return thresholds (deterministic evaluation)."""

import pytest

import tfpg

pytestmark = pytest.mark.learning


def test_a2c_solves_cartpole_within_200k_steps():
    agent = tfpg.A2C(seed=0)
    agent.fit("CartPole-v1", steps=200_000, num_envs=8, verbose=0)
    assert agent.total_steps <= 200_000
    assert agent.evaluate("CartPole-v1", episodes=10)["mean_return"] >= 475


def test_reinforce_with_baseline_reaches_400_on_cartpole_within_300k_steps():
    agent = tfpg.REINFORCE(seed=0, rollout_steps=500)
    agent.fit("CartPole-v1", steps=300_000, num_envs=8, verbose=0)
    assert agent.total_steps <= 300_000
    assert agent.evaluate("CartPole-v1", episodes=10)["mean_return"] >= 400
