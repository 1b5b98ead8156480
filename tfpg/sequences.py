"""Batches of sequences for recurrent policies: cutting time-major rollouts into sequences, picking sequences
for minibatches, and the input signature of a recurrent model.

A batch of T steps × N copies is cut into C = (T / L) · N sequences of L steps:
sequence j·N + i holds steps j·L … j·L + L − 1 of copy i, and starts from the
state copy i held before step j·L. The batch stays time-major over the
sequences (row l·C + c is step l of sequence c), so a recurrent model runs it as
C copies of L steps.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfpg.config import AgentConfig, sequence_steps
from tfpg.observations import ObservationSpec, map_arrays
from tfpg.recurrent import EPISODE_STARTS, OBSERVATIONS, STATES, is_sequence_input, sequence_input
from tfpg.transitions import Rollout


def input_signature(observation_spec: ObservationSpec, state_sizes: dict) -> object:
    """The `tf.TensorSpec`s of a model input: the observations, or for recurrent models (`state_sizes` given,
    role → S) a `sequence_input` of them."""
    observations = observation_spec.tensor_specs()
    if not state_sizes:
        return observations
    return sequence_input(observations, tf.TensorSpec([None], tf.float32, name=EPISODE_STARTS),
                          {role: tf.TensorSpec([None, size], tf.float32, name=f"{role}_state")
                           for role, size in state_sizes.items()})


def cut_sequences(array, length: int):
    """`[T, N, ...]` arrays (a nest of them) as `[L, C, ...]`: the C = (T / L) · N sequences of L steps.

    Sequence j·N + i is copy i's steps j·L … j·L + L − 1. `length` must divide T.
    """
    def cut(value):
        steps, copies = value.shape[:2]
        chunks = value.reshape((steps // length, length, copies, *value.shape[2:]))
        return np.swapaxes(chunks, 0, 1).reshape((length, (steps // length) * copies, *value.shape[2:]))

    return map_arrays(cut, array)


def flat_sequences(array, length: int):
    """`cut_sequences`, then the step and sequence axes merged: `[L · C, ...]`, row l·C + c."""
    return map_arrays(lambda value: value.reshape((-1, *value.shape[2:])), cut_sequences(array, length))


def sequence_starts(states: np.ndarray, length: int) -> np.ndarray:
    """The state each sequence of `cut_sequences` starts from: `[T, N, S]` per-step states → `[C, S]`."""
    return states[::length].reshape((-1, states.shape[-1]))


def count_sequences(batch: dict) -> tf.Tensor:
    """C: the number of sequences of a batch holding a `sequence_input` (its states' first dimension)."""
    inputs = next(value for value in batch.values() if is_sequence_input(value))
    return tf.shape(tf.nest.flatten(inputs[STATES])[0])[0]


def gather_sequences(batch: dict, chosen: tf.Tensor, count: tf.Tensor) -> dict:
    """The sequences `chosen` of a time-major batch of `count` sequences, still time-major.

    Every tensor of `batch` is `[L · count, ...]` (row l·count + c), except the states inside its
    `sequence_input`, which are `[count, S]`.
    """
    def rows(value):
        shape = tf.shape(value)
        grid = tf.reshape(value, tf.concat([[shape[0] // count, count], shape[1:]], axis=0))
        picked = tf.gather(grid, chosen, axis=1)
        return tf.reshape(picked, tf.concat([[-1], shape[1:]], axis=0))

    def select(value):
        if is_sequence_input(value):
            return sequence_input(tf.nest.map_structure(rows, value[OBSERVATIONS]), rows(value[EPISODE_STARTS]),
                                  tf.nest.map_structure(lambda state: tf.gather(state, chosen), value[STATES]))
        return tf.nest.map_structure(rows, value)

    return {name: select(value) for name, value in batch.items()}


def training_sequence_length(rollout: Rollout, state_sizes: dict, config: AgentConfig) -> int | None:
    """L: the steps of the sequences a recurrent agent trains a `Rollout` on (None for a feed-forward agent,
    whose `state_sizes` are empty): `config.sequence_length`, or the rollout's steps where that is 0 or more.

    Raises:
        ValueError: the rollout holds no recurrent states of the agent's models, or `sequence_length` does not
            divide its steps.
    """
    if not state_sizes:
        return None
    steps = rollout.rewards.shape[0]
    if rollout.states is None or set(rollout.states) != set(state_sizes):
        raise ValueError("This agent's policy is recurrent, but the rollout holds no recurrent states of its "
                         "models; collect the batch with this agent (agent.collect(env, steps)).")
    length = sequence_steps(config.sequence_length, steps)
    if steps % length:
        raise ValueError(f"The rollout has {steps} steps per env copy, which sequence_length={length} does not "
                         f"divide; collect rollout_steps={config.rollout_steps} steps per copy, or set a "
                         f"sequence_length that divides {steps}.")
    return length
