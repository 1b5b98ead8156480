"""The recurrent layer of tfpg's networks: an LSTM or GRU cell run over time-major sequences, reset at episode starts.

A recurrent model takes a `sequence_input` instead of bare observations: the
observations of T steps of N env copies, flattened time-major (row t·N + i is
step t of copy i), each step's episode-start flag, and the state every copy held
before the first of those steps. The state of a model is one tensor per copy
(`[N, state_size]`: the LSTM's h and c side by side, or the GRU's h); it is
zeroed before every step that starts an episode, so nothing of one episode
reaches the next.
"""

from __future__ import annotations

import keras
import tensorflow as tf

KINDS = ("lstm", "gru")
RECOMPUTE_REFUSAL = ("recompute_advantages re-estimates the values of a batch with the critic trained so far, which "
                     "a recurrent critic cannot do from the sequences' stored states; set recompute_advantages=False "
                     "with recurrent policies.")
# The keys of a sequence input: what a recurrent model reads instead of bare observations (prefixed, so that no
# Dict observation space of a user's can be taken for one).
OBSERVATIONS, EPISODE_STARTS, STATES = "tfpg_observations", "tfpg_episode_starts", "tfpg_states"


def sequence_input(observations, episode_starts, states: dict) -> dict:
    """The input of a recurrent model.

    Args:
        observations: `[T·N, ...]` model tensors (a nest for Dict and Tuple spaces), time-major.
        episode_starts: `[T·N]` float32, 1.0 where the step is the first of an episode.
        states: the state of each model before the first step, by model role ("policy", "value"): `[N, S]`.
    """
    return {OBSERVATIONS: observations, EPISODE_STARTS: episode_starts, STATES: states}


def is_sequence_input(value) -> bool:
    """Whether `value` is a `sequence_input` (a recurrent model's input)."""
    return isinstance(value, dict) and set(value) == {OBSERVATIONS, EPISODE_STARTS, STATES}


class RecurrentCore(keras.layers.Layer):
    """An LSTM or GRU cell over the steps of N sequences, its state zeroed where an episode starts.

    With x_t the features of step t and s_t the carried state,
    s'_t = (1 − start_t) · s_t and (y_t, s_{t+1}) = cell(x_t, s'_t).

    Args:
        kind: "lstm" or "gru".
        units: the width of the cell's output (and of each of its state vectors).
    """

    def __init__(self, kind: str, units: int, **kwargs):
        super().__init__(**kwargs)
        if kind not in KINDS:
            raise ValueError(f"recurrent must be one of {', '.join(KINDS)}, got {kind!r}.")
        self.kind = kind
        self.units = units
        self.cell = keras.layers.LSTMCell(units, dtype=self.dtype_policy, name="cell") if kind == "lstm" else \
            keras.layers.GRUCell(units, reset_after=True, dtype=self.dtype_policy, name="cell")

    @property
    def state_size(self) -> int:
        """S: the width of one copy's state (2 · units for an LSTM: h and c)."""
        return 2 * self.units if self.kind == "lstm" else self.units

    def initial_state(self, copies) -> tf.Tensor:
        """The state of `copies` sequences before their first step: zeros `[copies, S]`."""
        return tf.zeros([copies, self.state_size], tf.float32)

    def _step(self, features, state):
        if self.kind == "lstm":
            output, (h, c) = self.cell(features, [state[:, :self.units], state[:, self.units:]])
            return output, tf.concat([h, c], axis=-1)
        output, new = self.cell(features, [state])
        return output, new[0] if isinstance(new, (list, tuple)) else new

    def call(self, features, episode_starts, state):
        """Runs the cell over time-major sequences.

        Args:
            features: `[T·N, F]`, row t·N + i the features of step t of sequence i.
            episode_starts: `[T·N]`, 1.0 where the state is zeroed before the step.
            state: `[N, S]`, the state before step 0.

        Returns:
            `(outputs [T·N, units], states [T·N, S], final [N, S])`: each step's output, the state each step
            received (before the reset at an episode start), and the state after the last step.
        """
        if not self.cell.built:
            self.cell.build(features.shape)
        width = self.cell.kernel.shape[0]  # known once built, where the features' static width may not be
        features = tf.ensure_shape(features, [None, width])
        (outputs,), received, final = run_steps(lambda step, carried: _listed(self._step(step, carried)),
                                                features, episode_starts, state, [((self.units,), features.dtype)])
        return outputs, received, final


def _listed(outputs_and_state):
    outputs, state = outputs_and_state
    return [outputs], state


def _time_major(value, copies):
    """`[T·N, ...]` → `[T, N, ...]`, static dimensions kept."""
    shape = tf.shape(value)
    return tf.reshape(value, [shape[0] // copies, copies, *[d if d is not None else shape[1 + i]
                                                             for i, d in enumerate(value.shape[1:])]])


def _rows(value):
    """`[T, N, ...]` → `[T·N, ...]`, static dimensions kept."""
    shape = tf.shape(value)
    return tf.reshape(value, [-1, *[d if d is not None else shape[2 + i] for i, d in enumerate(value.shape[2:])]])


def run_steps(step, inputs, episode_starts, state, outputs: list) -> tuple[list, tf.Tensor, tf.Tensor]:
    """Runs `step(inputs_t, state_t) -> (outputs_t, state_{t+1})` over N time-major sequences, zeroing the state
    before every step that starts an episode: s'_t = (1 − start_t) · s_t.

    Args:
        step: one step of the N sequences: a nest of `[N, ...]` inputs and the state `[N, S]` → (a list of
            `[N, ...]` tensors, the new state `[N, S]`).
        inputs: a nest of `[T·N, ...]` tensors, row t·N + i step t of sequence i.
        episode_starts: `[T·N]`, 1.0 where the state is zeroed before the step.
        state: `[N, S]`, the state before step 0.
        outputs: `(shape of one row, dtype)` of each output of `step`.

    Returns:
        `(outputs, received [T·N, S], final [N, S])`: each output over all steps `[T·N, ...]`, the state each
        step received (before the reset at an episode start), and the state after the last step.
    """
    copies = tf.shape(state)[0]
    sequences = tf.nest.map_structure(lambda value: _time_major(value, copies), inputs)
    keep = 1.0 - _time_major(tf.cast(episode_starts, state.dtype), copies)[..., None]

    def next_step(carried, elements):
        received, _, _ = carried
        step_inputs, step_keep = elements
        step_outputs, new = step(step_inputs, received * step_keep)
        return new, list(step_outputs), received

    initial = [tf.zeros(tf.concat([[copies], tf.constant(shape, tf.int32)], axis=0), dtype) for shape, dtype in outputs]
    after, stacked, received = tf.scan(next_step, (sequences, keep), initializer=(state, initial, state))
    return [_rows(value) for value in stacked], _rows(received), after[-1]
