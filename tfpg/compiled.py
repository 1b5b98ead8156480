"""`compiled`: `tf.function` with a fixed input signature, for functions each agent traces once."""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf


def compiled(function: Callable, input_signature: Sequence) -> tf.types.experimental.PolymorphicFunction:
    """`tf.function(function, input_signature=input_signature)`, without TensorFlow's retracing warning.

    Every agent compiles its own bound methods once, for its fixed signature. TensorFlow counts the
    traces of a method across all instances, so building a few agents in one process would warn of
    "excessive retracing" that is not happening; the warning is turned off for these functions only.
    """
    function = tf.function(function, input_signature=input_signature)
    function._omit_frequent_tracing_warning = True  # the switch Keras uses for its own train functions
    return function
