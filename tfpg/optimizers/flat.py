"""Flat-vector views of variable lists."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf


def flatten(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    """Concatenates tensors into one vector (row-major, in list order)."""
    return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)


def unflatten(vector: tf.Tensor, like: Sequence) -> list[tf.Tensor]:
    """Splits a vector into tensors shaped like `like` (inverse of `flatten`)."""
    shapes = [tuple(v.shape) for v in like]
    pieces = tf.split(vector, [int(np.prod(shape)) for shape in shapes])
    return [tf.reshape(piece, shape) for piece, shape in zip(pieces, shapes)]


def assign_flat(variables: Sequence, vector: tf.Tensor) -> None:
    """Assigns a flat vector to variables (bit-exact inverse of `flatten`)."""
    for variable, value in zip(variables, unflatten(vector, variables)):
        variable.assign(tf.cast(value, variable.dtype))


def flat_gradient(tape: tf.GradientTape, target: tf.Tensor, variables: Sequence) -> tf.Tensor:
    """∇ target w.r.t. the variables as one vector (zeros for unconnected variables)."""
    gradients = tape.gradient(target, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return flatten(gradients)
