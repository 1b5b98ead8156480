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
# The keys of a sequence input: what a recurrent model reads instead of bare observations.
OBSERVATIONS, EPISODE_STARTS, STATES = "observations", "episode_starts", "states"


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
        copies = tf.shape(state)[0]
        steps = tf.shape(features)[0] // copies
        width = self.cell.kernel.shape[0]  # known once built, where the features' static width may not be
        sequences = tf.reshape(features, [steps, copies, width])
        keep = 1.0 - tf.reshape(tf.cast(episode_starts, features.dtype), [steps, copies, 1])

        def step(carried, inputs):
            received, _, _ = carried
            step_features, step_keep = inputs
            output, new = self._step(step_features, received * step_keep)
            return new, output, received

        after, outputs, received = tf.scan(
            step, (sequences, keep),
            initializer=(state, tf.zeros([copies, self.units], features.dtype), state))
        return (tf.reshape(outputs, [-1, self.units]), tf.reshape(received, [-1, self.state_size]), after[-1])
