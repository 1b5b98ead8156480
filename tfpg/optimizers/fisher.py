"""Fisher-vector products by double backpropagation."""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

from tfpg.optimizers.flat import flat_gradient


def fisher_vector_product(kl_fn: Callable[[], tf.Tensor], variables: Sequence, vector: tf.Tensor,
                          damping: float = 0.0) -> tf.Tensor:
    """(F + damping·I) v without forming F.

    F is the Hessian of the mean KL(π_old‖π_θ) at θ = θ_old, which equals the
    Fisher information E[∇log π ∇log πᵀ]. With g(θ) = ∇_θ KL,

        F v = ∇_θ (g(θ)ᵀ v),

    computed with two nested `tf.GradientTape`s (v is held constant).

    Args:
        kl_fn: computes the mean KL(π_old‖π_θ) from the current variables,
            with π_old held fixed (its value is 0 and its gradient 0 at θ_old).
        variables: the θ variables, in the order of `vector`.
        vector: flat v.
        damping: λ of the Tikhonov damping (F + λI) v.

    Returns:
        The flat product, shaped like `vector`.
    """
    vector = tf.stop_gradient(vector)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            kl = kl_fn()
        gradient = flat_gradient(inner, kl, variables)
        directional = tf.reduce_sum(gradient * tf.cast(vector, gradient.dtype))
    product = flat_gradient(outer, directional, variables)
    return product + damping * tf.cast(vector, product.dtype)
