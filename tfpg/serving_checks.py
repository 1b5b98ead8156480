"""Run-time checks of the inputs of an exported policy, with messages that say what is allowed.

A loaded SavedModel signature does not check the shape of its inputs, although
it declares them (`[None, *shape]`, as `saved_model_cli show` reports): a wrong
shape would fail deep inside a matrix product, and NaN would silently give NaN
actions. The serving functions therefore check their inputs here, in the graph,
before anything is computed. The shape checks read the shape the input has when
it is run, not the one the signature declares, which graph optimisation would
otherwise take as given.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf


def _shape_text(shape: Sequence[int]) -> str:
    return "[batch" + "".join(f", {d}" for d in shape) + "]"


def checked_input(tensor: tf.Tensor, name: str, shape: Sequence[int], low=None, high=None,
                  finite: bool = False) -> tf.Tensor:
    """`tensor` with static shape `[None, *shape]`, after run-time checks of its shape and values.

    Args:
        tensor: a batch (of any shape when run, whatever its static shape).
        name: the input's name, for the messages.
        shape: the shape of one element of the batch.
        low: smallest allowed value (a scalar or one per element position), or None.
        high: largest allowed value, or None.
        finite: whether NaN and infinity are refused.

    Raises:
        tf.errors.InvalidArgumentError (when run): naming the input, what it
            got and what is allowed.
    """
    shape = [int(d) for d in shape]
    # an input of unknown static shape, so that the checks are not folded away using the declared one
    actual = tf.shape(tf.compat.v1.placeholder_with_default(tensor, shape=None))
    rank_ok = tf.equal(tf.size(actual), len(shape) + 1)
    shape_ok = tf.cond(rank_ok, lambda: tf.reduce_all(tf.equal(actual[1:], tf.constant(shape, tf.int32))),
                       lambda: tf.constant(False))
    checks = [tf.debugging.Assert(shape_ok, [f"{name} must have shape {_shape_text(shape)} for this policy "
                                             f"(one row per {name[:-1] if name.endswith('s') else name}); got shape",
                                             actual])]
    with tf.control_dependencies(checks):
        tensor = tf.ensure_shape(tf.identity(tensor), [None, *shape])
    values = []
    if finite:
        values.append(tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(tensor)),
                                          [f"{name} contain NaN or infinite values; all must be finite."]))
    if low is not None:
        allowed = f"{name} must be at least {_bound_text(low)}; got minimum"
        values.append(tf.debugging.Assert(tf.reduce_all(tensor >= tf.cast(low, tensor.dtype)),
                                          [allowed, tf.reduce_min(tensor)]))
    if high is not None:
        allowed = f"{name} must be at most {_bound_text(high)}; got maximum"
        values.append(tf.debugging.Assert(tf.reduce_all(tensor <= tf.cast(high, tensor.dtype)),
                                          [allowed, tf.reduce_max(tensor)]))
    with tf.control_dependencies(values):
        return tf.identity(tensor)


def _bound_text(bound) -> str:
    array = np.asarray(bound)
    return str(array.item()) if array.size == 1 else str(array.tolist())


def same_rows(tensors: Sequence[tf.Tensor], names: Sequence[str]) -> list[tf.Tensor]:
    """`tensors`, after a run-time check that all hold the same number of rows (no broadcasting between them).

    Raises:
        tf.errors.InvalidArgumentError (when run): naming the inputs and their row counts.
    """
    rows = tf.stack([tf.shape(tf.compat.v1.placeholder_with_default(t, shape=None))[0] for t in tensors])
    check = tf.debugging.Assert(tf.reduce_all(tf.equal(rows, rows[0])), [
        f"the inputs {', '.join(names)} must hold the same number of rows (one per observation); got", rows])
    with tf.control_dependencies([check]):
        return [tf.identity(t) for t in tensors]
