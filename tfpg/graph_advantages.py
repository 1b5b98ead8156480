"""GAE and advantage standardisation as TensorFlow ops, for estimates recomputed inside a compiled update.

They compute what `tfpg.returns.generalized_advantages` and the batch standardisation of
`train_on_batch` compute in NumPy, on time-major `[T, N]` tensors, so an update can
re-estimate the advantages with the critic it has trained so far.
"""

from __future__ import annotations

import tensorflow as tf


def generalized_advantages(rewards: tf.Tensor, values: tf.Tensor, next_values: tf.Tensor, terminated: tf.Tensor,
                           truncated: tf.Tensor, gamma: float, lam: float) -> tuple[tf.Tensor, tf.Tensor]:
    """GAE(γ, λ) advantages and value targets over `[T, N]` tensors.

    δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t)
    A_t = δ_t + γ λ (1 − done_t) A_{t+1},   done_t = terminated_t ∨ truncated_t,   A_T = 0
    R_t = A_t + V(s_t)

    Args:
        rewards: `[T, N]` rewards.
        values: `[T, N]` V(s_t).
        next_values: `[T, N]` V(s_{t+1}) of each transition's own successor (the true final
            observation where the episode ended).
        terminated: `[T, N]`, 1.0 where the transition reached a terminal state.
        truncated: `[T, N]`, 1.0 where the episode was cut.
        gamma: discount factor γ.
        lam: GAE λ.

    Returns:
        `(advantages, returns)`, both `[T, N]` float32.
    """
    terminated = tf.cast(terminated, tf.float32)
    continues = 1.0 - tf.maximum(terminated, tf.cast(truncated, tf.float32))
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values

    def backward(following, step):
        delta, going_on = step
        return delta + gamma * lam * going_on * following

    advantages = tf.scan(backward, (deltas, continues), initializer=tf.zeros_like(deltas[0]), reverse=True)
    return advantages, advantages + values


def standardized(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """(x − μ) / (σ + 1e-8), with μ and σ the mean and std of `values` over the entries where `mask` is 1."""
    weights = mask / tf.maximum(tf.reduce_sum(mask), 1.0)
    mean = tf.reduce_sum(values * weights)
    std = tf.sqrt(tf.reduce_sum(tf.square(values - mean) * weights))
    return (values - mean) / (std + 1e-8)
