"""GAE and reward-to-go against values derived by hand."""

import numpy as np
import pytest

from tfpg.returns import generalized_advantages, next_state_values, reward_to_go

GAMMA, LAM = 0.9, 0.8


def column(*values):
    return np.array(values, dtype=np.float64)[:, None]


def test_next_state_values_uses_final_values_where_episodes_end():
    values = column(1.0, 2.0, 3.0)
    final = column(0.0, 7.0, 0.0)
    dones = column(0, 1, 0).astype(bool)
    result = next_state_values(values, np.array([4.0]), final, dones)
    np.testing.assert_allclose(result[:, 0], [2.0, 7.0, 4.0])


def test_gae_with_truncation_in_the_middle_and_bootstrap_at_the_end():
    # Steps 0-1 form an episode cut by a time limit at step 1 (final state value 5);
    # steps 2-3 begin a new episode that runs past the batch (bootstrap value 6).
    rewards = column(1.0, 2.0, 3.0, 4.0)
    values = column(0.5, 1.0, 1.5, 2.0)
    next_values = column(1.0, 5.0, 2.0, 6.0)
    terminated = column(0, 0, 0, 0).astype(bool)
    truncated = column(0, 1, 0, 0).astype(bool)
    d0 = 1.0 + GAMMA * 1.0 - 0.5
    d1 = 2.0 + GAMMA * 5.0 - 1.0
    d2 = 3.0 + GAMMA * 2.0 - 1.5
    d3 = 4.0 + GAMMA * 6.0 - 2.0
    a3 = d3
    a2 = d2 + GAMMA * LAM * a3
    a1 = d1                       # the recursion stops at the truncation
    a0 = d0 + GAMMA * LAM * a1
    advantages, returns = generalized_advantages(rewards, values, next_values, terminated, truncated,
                                                 GAMMA, LAM)
    np.testing.assert_allclose(advantages[:, 0], [a0, a1, a2, a3], rtol=1e-12)
    np.testing.assert_allclose(returns[:, 0], [a0 + 0.5, a1 + 1.0, a2 + 1.5, a3 + 2.0], rtol=1e-12)


def test_gae_termination_does_not_bootstrap_and_truncation_at_the_end_does():
    rewards = column(1.0, 1.0, 1.0)
    values = column(2.0, 3.0, 4.0)
    next_values = column(3.0, 99.0, 10.0)  # 99 must be ignored: step 1 terminates
    terminated = column(0, 1, 0).astype(bool)
    truncated = column(0, 0, 1).astype(bool)
    d2 = 1.0 + GAMMA * 10.0 - 4.0          # truncated at the batch end: bootstraps V(final)
    d1 = 1.0 - 3.0
    d0 = 1.0 + GAMMA * 3.0 - 2.0
    expected = [d0 + GAMMA * LAM * d1, d1, d2]
    advantages, _ = generalized_advantages(rewards, values, next_values, terminated, truncated, GAMMA, LAM)
    np.testing.assert_allclose(advantages[:, 0], expected, rtol=1e-12)


def test_gae_lambda_one_is_discounted_return_minus_value_and_columns_are_independent():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(5, 2))
    values = rng.normal(size=(5, 2))
    last = rng.normal(size=2)
    no = np.zeros((5, 2), bool)
    next_values = next_state_values(values, last, np.zeros((5, 2)), no)
    advantages, returns = generalized_advantages(rewards, values, next_values, no, no, GAMMA, 1.0)
    for env in range(2):
        expected = [sum(GAMMA ** (k - t) * rewards[k, env] for k in range(t, 5)) + GAMMA ** (5 - t) * last[env]
                    for t in range(5)]
        np.testing.assert_allclose(returns[:, env], expected, rtol=1e-10)
        np.testing.assert_allclose(advantages[:, env], np.array(expected) - values[:, env], rtol=1e-10)


def test_reward_to_go_masks_unfinished_tails_and_bootstraps_truncations():
    rewards = column(1.0, 2.0, 3.0, 4.0, 5.0)
    terminated = column(0, 1, 0, 0, 0).astype(bool)
    truncated = column(0, 0, 0, 1, 0).astype(bool)
    bootstrap = column(0.0, 0.0, 0.0, 10.0, 0.0)
    returns, complete = reward_to_go(rewards, terminated, truncated, GAMMA, bootstrap)
    g1 = 2.0
    g0 = 1.0 + GAMMA * g1
    g3 = 4.0 + GAMMA * 10.0
    g2 = 3.0 + GAMMA * g3
    np.testing.assert_allclose(returns[:4, 0], [g0, g1, g2, g3], rtol=1e-12)
    assert complete[:, 0].tolist() == [True, True, True, True, False]
    without_bootstrap, _ = reward_to_go(rewards, terminated, truncated, GAMMA)
    assert without_bootstrap[3, 0] == pytest.approx(4.0)
