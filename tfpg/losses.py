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
