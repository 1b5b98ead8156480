"""The user's recurrent policy and value models, written as one step of a batch of rows, run by tfpg over
sequences.

A recurrent user model is a Keras model with an integer attribute `state_size` (S) whose
`call(observations, state)` takes one step of N rows, the preprocessed observations (as every user model
gets them) and the state `[N, S]` each row carries, and returns `(distribution, new_state)` for a policy or
`(values, new_state)` for a value model, `new_state` `[N, S]`. tfpg zeroes the state before every step that
starts an episode and runs the model step by step over the sequences of a batch in one compiled loop, so the
model never sees time, resets or padding: it is written like a Keras RNN cell.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfpg.networks import ObservationEncoder
from tfpg.normalization import RunningNormalization
from tfpg.recurrent import EPISODE_STARTS, OBSERVATIONS, STATES, run_steps
from tfpg.user_models import over_flat_actions, squeezed_values


def is_recurrent_model(model) -> bool:
    """Whether a user's model follows the recurrent contract (it declares its `state_size`)."""
    return hasattr(model, "state_size")


def declared_state_size(model, role: str) -> int:
    """The user model's `state_size` as an int; a `ValueError` naming the model if it is not a positive int."""
    size = getattr(model, "state_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"The {role} model declares state_size={size!r}; a recurrent model's state_size is the "
                         f"width S of the state [batch, S] its call(observations, state) takes and returns, a "
                         f"positive int.")
    return size


class UserRecurrentModel(keras.Model):
    """Preprocessed observations → the user's one-step model, run over sequences from a `sequence_input`.

    Args:
        observation: observation space description.
        normalizer: shared observation normaliser or None.
        model: the user's model (see the module's docstring).
        state_key: the role whose state it reads ("policy" or "value").
        role: "policy" or "value", for messages.
    """

    def __init__(self, observation: dict, normalizer: RunningNormalization | None, model: keras.layers.Layer,
                 state_key: str, role: str, **kwargs):
        super().__init__(**kwargs)
        self.encoder = ObservationEncoder(observation, normalizer, flatten=False)
        self.model = model
        self.state_size = declared_state_size(model, role)
        self.state_key = state_key
        self.role = role
        self._structure = None  # what one step returns, learnt from the first call (when the agent is built)

    def _output(self, output):
        """One step's output as tfpg reads it (subclasses)."""
        return output

    def _step(self, observations, state):
        try:
            output, new_state = self.model(observations, state)
        except (TypeError, ValueError) as error:
            raise ValueError(f"The recurrent {self.role} model must return (output, new_state) from "
                             f"call(observations, state); calling it raised {type(error).__name__}: {error}") from None
        new_state = tf.convert_to_tensor(new_state)
        if new_state.shape.rank != 2 or new_state.shape[-1] not in (None, self.state_size):
            raise ValueError(f"The recurrent {self.role} model returned a new state of shape {new_state.shape}; "
                             f"expected [batch, {self.state_size}] (its state_size).")
        return self._output(output), new_state

    def sequence(self, inputs):
        """`(output, received, final)` over a `sequence_input`: the output of every step, the state each step
        received `[T·N, S]` and the state after the last step `[N, S]`."""
        observations = self.encoder(inputs[OBSERVATIONS])
        state = inputs[STATES][self.state_key]
        if self._structure is None:
            rows = tf.nest.map_structure(lambda value: value[:state.shape[0]], observations)
            self._structure = self._step(rows, state)[0]
            self._specs = [(tuple(part.shape[1:]), part.dtype)
                           for part in tf.nest.flatten(self._structure, expand_composites=True)]

        def step(step_observations, carried):
            output, new_state = self._step(step_observations, carried)
            return tf.nest.flatten(output, expand_composites=True), new_state

        parts, received, final = run_steps(step, observations, inputs[EPISODE_STARTS], state, self._specs)
        return tf.nest.pack_sequence_as(self._structure, parts, expand_composites=True), received, final

    def call(self, inputs):
        return self.sequence(inputs)[0]


class UserRecurrentPolicy(UserRecurrentModel):
    """A user's recurrent policy (`UserRecurrentModel`) whose steps return distributions over the flat actions.

    Args:
        observation: observation space description.
        action: action space description.
        normalizer: shared observation normaliser or None.
        model: the user's model.
    """

    def __init__(self, observation: dict, action: dict, normalizer: RunningNormalization | None,
                 model: keras.layers.Layer, **kwargs):
        super().__init__(observation, normalizer, model, "policy", "policy", **kwargs)
        self.discrete = action["type"] == "Discrete"

    def _output(self, output):
        return over_flat_actions(output, self.discrete)


class UserRecurrentValue(UserRecurrentModel):
    """A user's recurrent value model (`UserRecurrentModel`) whose steps return values `[N]`.

    Args:
        observation: observation space description.
        normalizer: shared observation normaliser or None.
        model: the user's model.
    """

    def __init__(self, observation: dict, normalizer: RunningNormalization | None, model: keras.layers.Layer,
                 **kwargs):
        super().__init__(observation, normalizer, model, "value", "value", **kwargs)

    def _output(self, output):
        return squeezed_values(output)
