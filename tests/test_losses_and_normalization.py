"""Loss functions and running statistics against direct computations."""

import numpy as np
import tensorflow as tf

from tfpg.losses import approximate_kl, masked_mean, policy_gradient_loss, value_loss
from tfpg.normalization import RunningNormalization


def test_masked_losses_ignore_masked_samples():
    log_probs = tf.constant([-1.0, -2.0, -3.0])
    advantages = tf.constant([1.0, -1.0, 100.0])
    mask = tf.constant([1.0, 1.0, 0.0])
    assert float(policy_gradient_loss(log_probs, advantages, mask)) == np.mean([1.0, -2.0])
    values, returns = tf.constant([1.0, 2.0, 3.0]), tf.constant([2.0, 4.0, 0.0])
    assert float(value_loss(values, returns, mask)) == np.mean([1.0, 4.0])
    assert float(masked_mean(values)) == 2.0


def test_approximate_kl_matches_exact_kl_in_expectation():
    # For samples a ~ p, E[(r - 1) - log r] with r = q/p equals KL(p||q).
    p = np.array([0.2, 0.5, 0.3])
    q = np.array([0.3, 0.3, 0.4])
    exact = float(np.sum(p * np.log(p / q)))
    rng = np.random.default_rng(0)
    samples = rng.choice(3, size=200_000, p=p)
    estimate = float(approximate_kl(tf.constant(np.log(p[samples])), tf.constant(np.log(q[samples]))))
    assert abs(estimate - exact) < 3e-3


def test_running_normalization_matches_statistics_of_all_batches():
    rng = np.random.default_rng(1)
    layer = RunningNormalization(3)
    batches = [rng.normal(loc=5.0, scale=[1.0, 2.0, 3.0], size=(n, 3)) for n in (7, 50, 13)]
    for batch in batches:
        layer.update(tf.constant(batch, tf.float32))
    everything = np.concatenate(batches)
    np.testing.assert_allclose(layer.mean.numpy(), everything.mean(0), rtol=1e-5)
    np.testing.assert_allclose(layer.variance.numpy(), everything.var(0), rtol=1e-4)
    assert layer.count.numpy() == len(everything)
    x = everything[:4].astype(np.float32)
    expected = (x - everything.mean(0)) / np.sqrt(everything.var(0) + 1e-8)
    np.testing.assert_allclose(layer(tf.constant(x)).numpy(), expected, rtol=1e-4, atol=1e-5)
    huge = tf.constant([[1e6, -1e6, 0.0]])
    assert np.abs(layer(huge).numpy()).max() <= 10.0
