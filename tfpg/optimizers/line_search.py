"""Backtracking line search for trust-region steps."""

from __future__ import annotations

from typing import Callable

import tensorflow as tf


def backtracking_line_search(evaluate: Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]], max_kl: float,
                             backtrack_ratio: float = 0.8, max_backtracks: int = 10):
    """Finds the largest step fraction αʲ (j = 0, 1, ...) that improves and stays in the trust region.

    Accepts the first j < `max_backtracks` with improvement(αʲ) > 0 and
    KL(αʲ) ≤ δ. `evaluate` is called with each candidate α and returns the
    surrogate improvement and the mean KL at θ_old + αΔ (it may set the
    parameters; the caller restores θ_old when nothing is accepted).

    Args:
        evaluate: α ↦ (improvement, mean KL).
        max_kl: δ.
        backtrack_ratio: the shrink factor α ∈ (0, 1).
        max_backtracks: candidates tried.

    Returns:
        `(accepted, fraction, tried, improvement, kl)`: whether a step was
        accepted, its αʲ (0 if none), the candidates evaluated, and the
        improvement and KL of the last candidate evaluated.
    """

    def keep_going(j, accepted, fraction, improvement, kl):
        return tf.logical_and(j < max_backtracks, tf.logical_not(accepted))

    def step(j, accepted, fraction, improvement, kl):
        candidate = tf.pow(tf.constant(backtrack_ratio, tf.float32), tf.cast(j, tf.float32))
        improvement, kl = evaluate(candidate)
        improvement, kl = tf.cast(improvement, tf.float32), tf.cast(kl, tf.float32)
        ok = tf.logical_and(improvement > 0.0, kl <= max_kl)
        return j + 1, ok, tf.where(ok, candidate, 0.0), improvement, kl

    tried, accepted, fraction, improvement, kl = tf.while_loop(
        keep_going, step, (tf.constant(0), tf.constant(False), tf.constant(0.0), tf.constant(0.0),
                           tf.constant(0.0))
    )
    return accepted, fraction, tried, improvement, kl
