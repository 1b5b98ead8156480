"""Exact math of the natural-gradient toolbox and the NPG/TRPO steps."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfpg
from helpers import explicit_hessian
from tfpg.optimizers import backtracking_line_search, conjugate_gradient, fisher_vector_product, flatten

tfd = tfp.distributions
INPUTS, HIDDEN = 3, 4


def _tiny_policy(kind, rng):
    """A float64 3→4 tanh→(Gaussian(2) | Categorical(3)) policy as a function of split variables."""
    outputs = 2 if kind == "gaussian" else 3
    shapes = [(INPUTS, HIDDEN), (HIDDEN,), (HIDDEN, outputs)] + ([(outputs,)] if kind == "gaussian" else [])
    variables = [tf.Variable(rng.normal(size=s) * (0.3 if len(s) == 1 else 1.0)) for s in shapes]
    x = tf.constant(rng.normal(size=(7, INPUTS)))

    def distribution(params):
        out = tf.tanh(x @ params[0] + params[1]) @ params[2]
        if kind == "gaussian":
            return tfd.Independent(tfd.Normal(out, tf.exp(params[3])), 1)
        return tfd.Categorical(logits=out)

    return variables, distribution


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
def test_fisher_vector_product_matches_the_explicit_kl_hessian(kind):
    rng = np.random.default_rng(0)
    variables, distribution = _tiny_policy(kind, rng)
    old = distribution([tf.constant(v.numpy()) for v in variables])  # π_old: fixed tensors

    def mean_kl_of(params):
        return tf.reduce_mean(tfd.kl_divergence(old, distribution(params)))

    hessian = explicit_hessian(mean_kl_of, variables)
    vector = tf.constant(rng.normal(size=len(hessian)))
    product = fisher_vector_product(lambda: mean_kl_of(variables), variables, vector).numpy()
    expected = hessian @ vector.numpy()
    assert np.linalg.norm(product - expected) / np.linalg.norm(expected) < 1e-6
    damped = fisher_vector_product(lambda: mean_kl_of(variables), variables, vector, damping=0.25).numpy()
    np.testing.assert_allclose(damped - product, 0.25 * vector.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-10)
    assert np.linalg.eigvalsh(hessian).min() > -1e-10  # a Fisher matrix is positive semi-definite


def test_conjugate_gradient_matches_numpy_solve_and_stops_at_the_tolerance():
    rng = np.random.default_rng(1)
    for size in (1, 5, 20):
        m = rng.normal(size=(size, size))
        a = m @ m.T + size * np.eye(size)
        b = rng.normal(size=size)
        x, iterations, residual = conjugate_gradient(lambda v: tf.linalg.matvec(tf.constant(a), v),
                                                     tf.constant(b), max_iterations=4 * size,
                                                     residual_tolerance=1e-20)
        np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-8, atol=1e-10)
        assert residual.numpy() < 1e-20 and iterations.numpy() <= 4 * size
    # a loose tolerance stops early, with rᵀr below it and the residual it reports
    a = np.diag(np.linspace(1.0, 100.0, 50))
    b = np.ones(50)
    x, iterations, residual = conjugate_gradient(lambda v: tf.linalg.matvec(tf.constant(a), v), tf.constant(b),
                                                 max_iterations=50, residual_tolerance=1e-4)
    r = b - a @ x.numpy()
    assert residual.numpy() < 1e-4
    assert r @ r == pytest.approx(residual.numpy(), rel=1e-3)
    assert 1 < iterations.numpy() < 50
    # and max_iterations bounds the work
    _, capped, _ = conjugate_gradient(lambda v: tf.linalg.matvec(tf.constant(a), v), tf.constant(b),
                                      max_iterations=3, residual_tolerance=0.0)
    assert capped.numpy() == 3


def test_line_search_accepts_the_first_improving_step_inside_the_trust_region():
    # improvement(α) = α (always positive); kl(α) = α²: accepted once α² ≤ 0.3 → 0.8^j ≤ 0.5477 → j = 3
    accepted, fraction, tried, improvement, kl = backtracking_line_search(
        lambda a: (a, a * a), max_kl=0.3, backtrack_ratio=0.8, max_backtracks=10)
    assert bool(accepted) and int(tried) == 4
    assert float(fraction) == pytest.approx(0.8 ** 3)
    assert float(kl) == pytest.approx(0.8 ** 6)
    rejected = backtracking_line_search(lambda a: (-a, 0.0 * a), max_kl=1.0, max_backtracks=5)
    assert not bool(rejected[0]) and int(rejected[2]) == 5 and float(rejected[1]) == 0.0


def _parameters(agent):
    return [v.numpy().copy() for v in agent.policy.trainable_variables]


def _surrogate_and_kl(agent, rollout, old_parameters):
    observations = tf.constant(rollout.flat("observations"))
    advantages = rollout.flat("advantages")
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    new = agent.policy(observations)
    current = [v.numpy() for v in agent.policy.trainable_variables]
    for variable, value in zip(agent.policy.trainable_variables, old_parameters):
        variable.assign(value)
    old = agent.policy(observations)
    old_dist = tfd.Independent(tfd.Categorical(logits=tf.identity(old.distribution.logits)), 1)
    for variable, value in zip(agent.policy.trainable_variables, current):
        variable.assign(value)
    actions = rollout.flat("actions")
    ratio = np.exp(new.log_prob(actions).numpy() - old_dist.log_prob(actions).numpy())
    return float(np.mean((ratio - 1.0) * advantages)), float(tf.reduce_mean(tfd.kl_divergence(old_dist, new)))


def test_accepted_trpo_steps_improve_the_surrogate_within_the_kl_bound():
    agent = tfpg.TRPO(seed=0, rollout_steps=256, max_kl=0.01)
    accepted = 0
    for _ in range(4):
        rollout = agent.collect("CartPole-v1", 256)
        before = _parameters(agent)
        logs = agent.train_on_batch(rollout)
        improvement, kl = _surrogate_and_kl(agent, rollout, before)
        if logs["line_search_success"]:
            accepted += 1
            assert improvement > 0 and kl <= 0.01 + 1e-6
            assert kl == pytest.approx(logs["kl"], rel=1e-3, abs=1e-7)
    assert accepted >= 1


class _RejectingTRPO(tfpg.TRPO):
    """Moves the parameters to every candidate step but reports no improvement, so all are rejected."""

    def _accept_step(self, evaluate):
        def no_better(fraction):
            improvement, kl = evaluate(fraction)
            return -tf.abs(improvement) - 1.0, kl

        return super()._accept_step(no_better)


def test_a_rejected_step_leaves_the_parameters_bit_for_bit_unchanged():
    agent = _RejectingTRPO(seed=0, rollout_steps=128)
    rollout = agent.collect("CartPole-v1", 128)
    before = _parameters(agent)
    logs = agent.train_on_batch(rollout)
    assert logs["line_search_success"] == 0.0 and logs["line_search_steps"] == 10
    for old, new in zip(before, _parameters(agent)):
        assert np.array_equal(old, new)


def _quadratic_kl_of_next_step(agent, rollout, damping):
    """½Δᵀ(F + λI)Δ of the update `agent` makes on a Categorical-policy `rollout`."""
    before = _parameters(agent)
    logs = agent.train_on_batch(rollout)
    variables = agent.policy.trainable_variables
    step = flatten([tf.constant(v.numpy()) for v in variables]) - flatten([tf.constant(b) for b in before])
    current = [v.numpy() for v in variables]
    for variable, value in zip(variables, before):
        variable.assign(value)
    observations = tf.constant(rollout.flat("observations"))
    old = agent.policy(observations)
    old = tfd.Independent(tfd.Categorical(logits=tf.identity(old.distribution.logits)), 1)
    kl_fn = lambda: tf.reduce_mean(tfd.kl_divergence(old, agent.policy(observations)))  # noqa: E731
    quadratic = 0.5 * float(tf.reduce_sum(step * fisher_vector_product(kl_fn, variables, step, damping)))
    for variable, value in zip(variables, current):
        variable.assign(value)
    return quadratic, logs


def test_an_npg_step_has_quadratic_kl_delta():
    agent = tfpg.NPG(seed=0, rollout_steps=256, max_kl=0.02, cg_damping=0.1)
    rollout = agent.collect("CartPole-v1", 256)
    # ½Δᵀ(F + λI)Δ = δ exactly for a CG iterate (its residual is orthogonal to it)
    quadratic, _ = _quadratic_kl_of_next_step(agent, rollout, 0.1)
    assert quadratic == pytest.approx(0.02, rel=2e-3)


def test_value_regression_lowers_the_value_loss():
    agent = tfpg.TRPO(seed=0, rollout_steps=512, value_function="regression")
    rollout = agent.collect("CartPole-v1", 512)
    observations = tf.constant(rollout.flat("observations"))
    returns = rollout.flat("returns")
    old_loss = np.mean((agent.value_model(observations).numpy() - returns) ** 2)
    logs = agent.train_on_batch(rollout)
    new_loss = np.mean((agent.value_model(observations).numpy() - returns) ** 2)
    assert new_loss < old_loss
    assert logs["value_loss"] == pytest.approx(new_loss, rel=1e-4)


def test_trust_region_value_step_lowers_the_loss_within_its_constraint():
    agent = tfpg.TRPO(seed=0, rollout_steps=512, value_max_kl=0.01)  # the default value fit
    rollout = agent.collect("CartPole-v1", 512)
    observations = tf.constant(rollout.flat("observations"))
    returns = rollout.flat("returns")
    old_values = agent.value_model(observations).numpy()
    logs = agent.train_on_batch(rollout)
    new_values = agent.value_model(observations).numpy()
    sigma2 = np.mean((old_values - returns) ** 2) + 1e-8
    assert logs["value_step_accepted"] == 1.0
    assert np.mean((new_values - returns) ** 2) < np.mean((old_values - returns) ** 2)
    assert np.mean((new_values - old_values) ** 2) / (2 * sigma2) <= 0.01 + 1e-6


@pytest.mark.parametrize("entropy_coef", [0.0, 0.05])
def test_the_entropy_bonus_alone_widens_the_gaussian_by_the_natural_step(entropy_coef):
    # With Â = 0 the objective is c_e E[H] = c_e Σ log σ + const, whose gradient is c_e per log-std entry and
    # zero for the mean network. The Fisher of a state-independent log-std is 2I and has no cross terms
    # with the mean, so CG gives x = g / (2 + λ) and Δ = sqrt(2δ / gᵀx) x = sqrt(2δ / (A (2 + λ))) per entry.
    max_kl, damping = 0.02, 0.1
    agent = tfpg.NPG(seed=0, rollout_steps=64, max_kl=max_kl, cg_damping=damping, entropy_coef=entropy_coef)
    rollout = agent.collect("MountainCarContinuous-v0", 64)
    rollout = dataclasses.replace(rollout, advantages=np.zeros_like(rollout.advantages))
    log_std = agent.policy.head.log_std
    before_log_std = log_std.numpy().copy()
    before_means = [v.numpy().copy() for v in agent.policy.trainable_variables if v is not log_std]
    agent.train_on_batch(rollout)
    action_size = before_log_std.size
    expected = np.sqrt(2 * max_kl / (action_size * (2 + damping))) if entropy_coef else 0.0
    np.testing.assert_allclose(log_std.numpy() - before_log_std, expected, rtol=1e-4, atol=1e-7)
    after_means = [v.numpy() for v in agent.policy.trainable_variables if v is not log_std]
    for old, new in zip(before_means, after_means):
        np.testing.assert_allclose(new, old, atol=1e-7)


@pytest.mark.parametrize("schedule", ["constant", "linear"])
def test_the_linear_max_kl_schedule_anneals_the_natural_step_to_zero(schedule):
    # δ_t = δ (1 − s / H) for a batch collected after s steps; a CG iterate's step has ½Δᵀ(F + λI)Δ = δ_t.
    max_kl, damping, batch, horizon = 0.02, 0.1, 256, 1024
    agent = tfpg.NPG(seed=0, rollout_steps=batch, max_kl=max_kl, cg_damping=damping, max_kl_schedule=schedule,
                     learning_rate_decay_steps=horizon)
    for collected_before in (0, batch, 2 * batch):
        rollout = agent.collect("CartPole-v1", batch)
        quadratic, logs = _quadratic_kl_of_next_step(agent, rollout, damping)
        expected = max_kl * (1 - collected_before / horizon) if schedule == "linear" else max_kl
        assert logs["max_kl"] == pytest.approx(expected, rel=1e-6)
        assert quadratic == pytest.approx(expected, rel=2e-3)


def test_a_fit_anneals_max_kl_to_zero_at_its_step_target():
    agent = tfpg.TRPO(seed=0, rollout_steps=128, max_kl=0.02, max_kl_schedule="linear")
    history = agent.fit("CartPole-v1", steps=4 * 128, verbose=0)
    np.testing.assert_allclose(history.history["max_kl"], [0.02 * (1 - k / 4) for k in range(4)], rtol=1e-6)
    assert all(kl <= bound + 1e-7 for kl, bound, accepted in zip(
        history.history["kl"], history.history["max_kl"], history.history["line_search_success"]) if accepted)
