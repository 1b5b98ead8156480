"""Epochs of shuffled minibatches, written to run inside one `tf.function`."""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from tfpg.sequences import count_sequences, gather_sequences


def minibatch_epochs(batch: dict, epochs: int, minibatch_size: int, rng: tf.random.Generator,
                     train_step: Callable[[dict], tf.Tensor], metric_count: int,
                     stop_after_epoch: Callable[[tf.Tensor], tf.Tensor] | None = None,
                     before_epoch: Callable[[dict], dict] | None = None, sequences: bool = False):
    """Runs `train_step` on shuffled minibatches for up to `epochs` passes over `batch`.

    Each epoch draws a fresh permutation from `rng` (so shuffling is part of the
    checkpointed RNG state) and visits ⌊n / m⌋ minibatches of m rows (one of n
    rows if n < m); the few rows beyond the last whole minibatch wait for the
    next epoch's permutation.

    Args:
        batch: dict of tensors (or nests of them) sharing their first dimension n.
        epochs: the most passes.
        minibatch_size: m.
        rng: the generator the permutations are drawn from.
        train_step: minibatch dict ↦ vector of `metric_count` metrics.
        metric_count: the length of that vector.
        stop_after_epoch: the epoch's mean metrics ↦ bool tensor; True ends the loop.
        before_epoch: `batch` ↦ the batch an epoch's minibatches are drawn from, called at the start
            of every epoch (to refresh fields that depend on the parameters trained so far).
        sequences: the batch holds a recurrent model's `tfpg.recurrent.sequence_input`: minibatches are
            whole sequences (`tfpg.sequences`), max(1, ⌊m / L⌋) of the batch's C sequences of L steps,
            never single rows.

    Returns:
        `(mean_metrics, epochs_run)`: metrics averaged over every step taken.
    """
    rows = tf.shape(tf.nest.flatten(batch)[0])[0]
    if sequences:
        size = count_sequences(batch)
        minibatch = tf.minimum(tf.maximum(1, minibatch_size // (rows // size)), size)
    else:
        size = rows
        minibatch = tf.minimum(minibatch_size, size)
    count = size // minibatch
    total = tf.zeros([metric_count])
    steps = tf.constant(0.0)
    epochs_run = tf.constant(0)
    for _ in tf.range(epochs):
        epoch_batch = batch if before_epoch is None else before_epoch(batch)
        order = tf.argsort(rng.uniform([size]))
        epoch_total = tf.zeros([metric_count])
        for index in tf.range(count):
            chosen = order[index * minibatch:(index + 1) * minibatch]
            if sequences:
                sample = gather_sequences(epoch_batch, chosen, size)
            else:
                sample = tf.nest.map_structure(lambda value: tf.gather(value, chosen), epoch_batch)
            epoch_total += train_step(sample)
        total += epoch_total
        steps += tf.cast(count, tf.float32)
        epochs_run += 1
        if stop_after_epoch is not None:
            if stop_after_epoch(epoch_total / tf.cast(count, tf.float32)):
                break
    return total / steps, epochs_run
