"""Conjugate gradient for symmetric positive-definite systems given only matrix-vector products."""

from __future__ import annotations

from typing import Callable

import tensorflow as tf


def conjugate_gradient(matvec: Callable[[tf.Tensor], tf.Tensor], b: tf.Tensor, max_iterations: int = 10,
                       residual_tolerance: float = 1e-10) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Approximately solves A x = b for SPD A, starting from x₀ = 0.

    r₀ = p₀ = b; for k = 0, 1, ...:
        α = rₖᵀrₖ / pₖᵀA pₖ,  x ← x + α pₖ,  rₖ₊₁ = rₖ − α A pₖ,
        pₖ₊₁ = rₖ₊₁ + (rₖ₊₁ᵀrₖ₊₁ / rₖᵀrₖ) pₖ,
    stopping after `max_iterations` products or once rᵀr < `residual_tolerance`.
    In exact arithmetic it solves an n×n system in n iterations. Runs as a
    `tf.while_loop`, so it compiles into the caller's `tf.function`.

    Args:
        matvec: x ↦ A x on flat vectors.
        b: the right-hand side.
        max_iterations: the most matrix-vector products used.
        residual_tolerance: stop when the squared residual norm rᵀr falls below this.

    Returns:
        `(x, iterations, residual)`: the solution, the iterations used and the
        final squared residual norm rᵀr.
    """
    b = tf.convert_to_tensor(b)
    rr = tf.reduce_sum(b * b)

    def keep_going(iteration, x, r, p, rr):
        return tf.logical_and(iteration < max_iterations, rr >= residual_tolerance)

    def step(iteration, x, r, p, rr):
        product = matvec(p)
        alpha = rr / tf.reduce_sum(p * product)
        x = x + alpha * p
        r = r - alpha * product
        new_rr = tf.reduce_sum(r * r)
        p = r + (new_rr / rr) * p
        return iteration + 1, x, r, p, new_rr

    iterations, x, _, _, rr = tf.while_loop(
        keep_going, step, (tf.constant(0), tf.zeros_like(b), b, b, rr)
    )
    return x, iterations, rr
