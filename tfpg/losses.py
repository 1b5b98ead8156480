"""Policy-gradient losses as pure functions of tensors `[batch]`.

`mask` weights each sample (1 = used, 0 = ignored); every mean below is the
mask-weighted mean Σ mask·x / Σ mask.
"""

from __future__ import annotations

import tensorflow as tf


def masked_mean(values: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
    """Σ mask·x / max(Σ mask, 1); the plain mean without a mask."""
    if mask is None:
        return tf.reduce_mean(values)
    return tf.reduce_sum(values * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def policy_gradient_loss(log_probs: tf.Tensor, advantages: tf.Tensor,
                         mask: tf.Tensor | None = None) -> tf.Tensor:
    """L = −E[log π(a|s) Â]; its gradient is minus the policy gradient."""
    return -masked_mean(log_probs * tf.stop_gradient(advantages), mask)


def value_loss(values: tf.Tensor, returns: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
    """L = E[(V(s) − R)²]."""
    return masked_mean(tf.square(values - tf.stop_gradient(returns)), mask)


def approximate_kl(old_log_probs: tf.Tensor, new_log_probs: tf.Tensor,
                   mask: tf.Tensor | None = None) -> tf.Tensor:
    """KL(π_old‖π_new) ≈ E[(r − 1) − log r], r = π_new/π_old: unbiased and non-negative."""
    log_ratio = new_log_probs - old_log_probs
    return masked_mean(tf.exp(log_ratio) - 1.0 - log_ratio, mask)


def clipped_surrogate_loss(log_probs: tf.Tensor, old_log_probs: tf.Tensor, advantages: tf.Tensor,
                           clip_range: float, mask: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """PPO-clip: L = −E[min(r Â, clip(r, 1 − ε, 1 + ε) Â)], r = π/π_old.

    Returns:
        `(loss, clip_fraction)`: the fraction of samples with |r − 1| > ε.
    """
    ratio = tf.exp(log_probs - old_log_probs)
    unclipped = ratio * advantages
    clipped = tf.clip_by_value(ratio, 1.0 - clip_range, 1.0 + clip_range) * advantages
    loss = -masked_mean(tf.minimum(unclipped, clipped), mask)
    clip_fraction = masked_mean(tf.cast(tf.abs(ratio - 1.0) > clip_range, tf.float32), mask)
    return loss, clip_fraction


def kl_penalty_loss(log_probs: tf.Tensor, old_log_probs: tf.Tensor, advantages: tf.Tensor,
                    kl: tf.Tensor, beta: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
    """PPO KL-penalty: L = −(E[r Â] − β E[KL(π_old‖π)]), r = π/π_old."""
    ratio = tf.exp(log_probs - old_log_probs)
    return -(masked_mean(ratio * advantages, mask) - beta * masked_mean(kl, mask))


def adapted_kl_coefficient(beta: tf.Tensor, kl: tf.Tensor, target: float) -> tf.Tensor:
    """The adaptive-KL rule: β ← 2β if KL > 1.5 d_targ, β ← β/2 if KL < d_targ/1.5, else β."""
    return tf.where(kl > 1.5 * target, 2.0 * beta, tf.where(kl < target / 1.5, 0.5 * beta, beta))


def clipped_value_loss(values: tf.Tensor, old_values: tf.Tensor, returns: tf.Tensor, clip_range: float,
                       mask: tf.Tensor | None = None) -> tf.Tensor:
    """L = E[max((V − R)², (V_old + clip(V − V_old, ±c) − R)²)]."""
    clipped = old_values + tf.clip_by_value(values - old_values, -clip_range, clip_range)
    return masked_mean(tf.maximum(tf.square(values - returns), tf.square(clipped - returns)), mask)
