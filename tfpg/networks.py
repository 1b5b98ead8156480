"""Policy and value Keras models; the policy returns a `tfd.Distribution`.

Policies act on flat action vectors `[batch, A]`: the env-facing shape,
offsets and clipping are applied by `tfpg.space_descriptions.to_env_actions`.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfpg.action_masks import MaskedLogits, split_mask, without_mask
from tfpg.image_encoder import is_image
from tfpg.normalization import RunningNormalization
from tfpg.observations import ObservationSpec, is_nested
from tfpg.recurrent import EPISODE_STARTS, OBSERVATIONS, STATES, RecurrentCore, is_sequence_input
from tfpg.space_descriptions import action_size, flat_size

tfd = tfp.distributions

# Masks logits of padded categories; finite so that entropies and KLs stay finite.
_PADDED_LOGIT = -1e9


def action_dtype(description: dict) -> tf.DType:
    """The dtype of the flat actions a policy for a described space samples."""
    return tf.float32 if description["type"] == "Box" else tf.int32


class ObservationEncoder(keras.layers.Layer):
    """tfpg's preprocessing: normalises `Box` observations, scales images, one-hot encodes `Discrete` ones.

    `Box` observations are normalised by the running statistics (if a
    normaliser is given) and flattened to `[batch, features]`, or with
    `flatten=False` kept in their shape, for an encoder or a user's model.
    Images (`tfpg.image_encoder.is_image`) are scaled from uint8 to [0, 1].
    `Dict` and `Tuple` observations are preprocessed leaf by leaf, in their
    structure (never flattened: an encoder combines them).

    Args:
        description: observation space description (`tfpg.space_descriptions.describe_observation_space`).
        normalizer: a shared `RunningNormalization` (a `NormalizerSet` for nested
            observations), or None to skip normalisation.
        flatten: flatten `Box` observations.
    """

    def __init__(self, description: dict, normalizer: RunningNormalization | None = None, flatten: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.description = description
        self.normalizer = normalizer
        self.flatten = flatten
        if is_nested(description):
            self.spec = ObservationSpec(description)
            self.parts = {}
            for leaf in self.spec.leaves:
                part = ObservationEncoder(leaf.description, normalizer.get(leaf.path) if normalizer else None,
                                          flatten=False, name=f"observations_{leaf.path}")
                setattr(self, f"part_{leaf.path}", part)  # tracked by name, so checkpoints see each
                self.parts[leaf.path] = part
            return
        self.size = flat_size(description)

    def call(self, observations):
        if is_nested(self.description):
            return self.spec.map(lambda leaf, value: self.parts[leaf.path](value), observations)
        if self.description["type"] == "Discrete":
            indices = tf.cast(observations, tf.int32) - self.description["start"]
            return tf.one_hot(tf.reshape(indices, [-1]), self.size, dtype=tf.float32)
        if is_image(self.description):
            scaled = tf.cast(observations, tf.float32) / 255.0
            return tf.reshape(scaled, [-1, self.size]) if self.flatten else scaled
        flat = tf.reshape(tf.cast(observations, tf.float32), [-1, self.size])
        if self.normalizer is not None:
            flat = self.normalizer(flat)
        return flat if self.flatten else tf.reshape(flat, [-1, *self.description["shape"]])


def encoded_features(preprocessor: ObservationEncoder, encoder: keras.layers.Layer | None,
                     observations) -> tf.Tensor:
    """`[batch, features]`: preprocessed observations, then the user's encoder (if any), flattened."""
    features = preprocessor(observations)
    if encoder is None:
        return features
    features = encoder(features)
    return tf.reshape(features, [tf.shape(features)[0], -1])


class Torso:
    """The layers from the observations to the features a head reads: preprocessing, the encoder (if any),
    the recurrent layer (if any) and the hidden layers, shared by tfpg's policy and value networks.

    A recurrent torso takes a `tfpg.recurrent.sequence_input` and reads the state stored under its model's
    role (`state_key`)."""

    encoder: ObservationEncoder
    features: keras.layers.Layer | None
    recurrent: RecurrentCore | None
    hidden: list
    state_key: str
    mask_key: str | None = None  # the Dict observation entry holding the action mask (`tfpg.action_masks`)

    def observations_and_mask(self, inputs) -> tuple:
        """`(observations without the mask entry, the action mask or None)` of the model's input."""
        observations = inputs[OBSERVATIONS] if is_sequence_input(inputs) else inputs
        return split_mask(observations, self.mask_key)

    def torso_and_state(self, inputs) -> tuple[tf.Tensor, tf.Tensor | None, tf.Tensor | None]:
        """`(features [batch, units], states, final)`: the hidden layers' output and, for a recurrent torso,
        the state each step received `[batch, S]` and the state after the last step `[N, S]` (None otherwise)."""
        states = final = None
        # a feed-forward network beside a user's recurrent policy reads the observations of a sequence input
        observations, _ = self.observations_and_mask(inputs)
        features = encoded_features(self.encoder, self.features, observations)
        if self.recurrent is not None:
            features, states, final = self.recurrent(features, inputs[EPISODE_STARTS], inputs[STATES][self.state_key])
        for layer in self.hidden:
            features = layer(features)
        return features, states, final

    def torso(self, inputs) -> tf.Tensor:
        """The hidden layers' output `[batch, units]`: what the head (and a shared value head) read."""
        return self.torso_and_state(inputs)[0]


def _dense(units: int, activation, gain: float, name: str) -> keras.layers.Dense:
    return keras.layers.Dense(
        units,
        activation=activation,
        kernel_initializer=keras.initializers.Orthogonal(gain=gain),
        bias_initializer="zeros",
        name=name,
    )


def mlp(hidden_sizes: Sequence[int], activation: str, name: str) -> list[keras.layers.Dense]:
    """Hidden Dense layers with orthogonal initialisation (gain √2)."""
    return [_dense(units, activation, math.sqrt(2.0), f"{name}_{i}") for i, units in enumerate(hidden_sizes)]


def track_layers(model: keras.Model, layers: Sequence[keras.layers.Layer], prefix: str) -> None:
    """Makes each of `layers` an attribute of `model` (`<prefix>_0`, `<prefix>_1`, ...).

    `tf.train.Checkpoint` does not follow Keras 3's tracked lists: layers held
    only in a list attribute would silently be left out of checkpoints.
    """
    for index, layer in enumerate(layers):
        setattr(model, f"{prefix}_{index}", layer)


def _half_ranges(description: dict) -> np.ndarray:
    """(high − low)/2 per flat action dimension of a Box description; 1 where a bound is infinite."""
    half = (np.asarray(description["high"], np.float64) - np.asarray(description["low"], np.float64)) / 2.0
    return np.where(np.isfinite(half) & (half > 0), half, 1.0)


class DistributionHead(keras.layers.Layer):
    """Maps features to the action distribution of a described action space.

    - `Box`: diagonal Gaussian `Independent(Normal(μ(x), exp(log_std)), 1)` with a
      state-independent learnable log-std, initially `initial_log_std` plus the log
      of each dimension's half-range (high − low)/2 (plus 0 where a bound is
      infinite), so the initial std is the same fraction of every action range.
    - `Discrete` / `MultiDiscrete`: independent categoricals, event shape `[D]`.
    - `MultiBinary`: independent Bernoullis, event shape `[n]`.

    A categorical head called with an action mask gives the masked categories the logit −10⁹
    (`tfpg.action_masks`).

    Args:
        description: action space description (`tfpg.space_descriptions.describe_action_space`).
        initial_log_std: initial log standard deviation of Gaussian policies, in
            units of the action half-range.
    """

    def __init__(self, description: dict, initial_log_std: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.description = description
        kind = description["type"]
        self.masked_logits = MaskedLogits(description) if kind in ("Discrete", "MultiDiscrete") else None
        if kind in ("Discrete", "MultiDiscrete"):
            nvec = [description["n"]] if kind == "Discrete" else description["nvec"]
            self.nvec = nvec
            self.max_categories = max(nvec)
            mask = np.array([[c < n for c in range(self.max_categories)] for n in nvec])
            self.padding = tf.constant(np.where(mask, 0.0, _PADDED_LOGIT), tf.float32)
            units = len(nvec) * self.max_categories
        else:
            units = action_size(description)
        self.projection = _dense(units, None, 0.01, "logits" if kind != "Box" else "mean")
        if kind == "Box":
            initial = initial_log_std + np.log(_half_ranges(description))
            self.log_std = self.add_weight(
                shape=(units,),
                initializer=lambda shape, dtype=None: tf.constant(initial.reshape(shape), dtype or tf.float32),
                name="log_std",
            )

    def call(self, features, allowed=None):
        kind = self.description["type"]
        outputs = self.projection(features)
        if kind == "Box":
            return tfd.Independent(tfd.Normal(outputs, tf.exp(self.log_std)), 1)
        if kind == "MultiBinary":
            return tfd.Independent(tfd.Bernoulli(logits=outputs, dtype=tf.int32), 1)
        logits = tf.reshape(outputs, [-1, len(self.nvec), self.max_categories]) + self.padding
        if allowed is not None:
            logits = self.masked_logits(logits, allowed)
        return tfd.Independent(tfd.Categorical(logits=logits, dtype=tf.int32), 1)


class PolicyNetwork(Torso, keras.Model):
    """Observations → action distribution: preprocessing, optional encoder, optional recurrent layer, MLP torso,
    distribution head.

    Args:
        observation: observation space description.
        action: action space description.
        hidden_sizes: widths of the hidden layers (may be empty).
        activation: hidden activation name (Keras).
        normalizer: shared observation normaliser or None.
        initial_log_std: initial log-std of Gaussian policies.
        encoder: a user's layer mapping the preprocessed observations to
            features, before the hidden layers; None: the flat observations.
        recurrent: a `RecurrentCore` between the encoder and the hidden layers; the model then takes a
            `tfpg.recurrent.sequence_input` and reads the state of role "policy".
        action_mask: the Dict observation entry holding the action mask (`tfpg.action_masks.mask_entry`), or
            None; the encoder sees the observation without it.
    """

    def __init__(self, observation: dict, action: dict, hidden_sizes: Sequence[int] = (64, 64),
                 activation: str = "tanh", normalizer: RunningNormalization | None = None,
                 initial_log_std: float = 0.0, encoder: keras.layers.Layer | None = None,
                 recurrent: RecurrentCore | None = None, action_mask: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.mask_key = action_mask
        self.encoder = ObservationEncoder(without_mask(observation, action_mask), normalizer,
                                          flatten=encoder is None)
        self.features = encoder
        self.recurrent = recurrent
        self.state_key = "policy"
        self.hidden = mlp(hidden_sizes, activation, "policy_hidden")
        track_layers(self, self.hidden, "hidden")
        self.head = DistributionHead(action, initial_log_std)

    def call(self, inputs):
        return self.head(self.torso(inputs), self.observations_and_mask(inputs)[1])

    def sequence(self, inputs):
        """`(distribution, received, final)`: the policy over a sequence input's steps, the state each step
        received and the state after the last one (see `Torso.torso_and_state`)."""
        features, received, final = self.torso_and_state(inputs)
        return self.head(features, self.observations_and_mask(inputs)[1]), received, final


class ValueNetwork(Torso, keras.Model):
    """Observations → state values `[batch]`: preprocessing, optional encoder, optional recurrent layer, MLP torso,
    linear output.

    Args:
        observation: observation space description.
        hidden_sizes: widths of the hidden layers (may be empty).
        activation: hidden activation name (Keras).
        normalizer: shared observation normaliser or None.
        shared_hidden: hidden layers to share (e.g. the policy's), instead of new ones.
        encoder: a user's layer mapping the preprocessed observations to
            features (the policy's, to share it); None: the flat observations.
        recurrent: a `RecurrentCore` (the policy's, to share it) between the encoder and the hidden layers.
        state_key: the role whose state a recurrent value network reads ("policy" when it shares the
            policy's recurrent layer).
        action_mask: the Dict observation entry holding the action mask, or None; never a feature.
    """

    def __init__(self, observation: dict, hidden_sizes: Sequence[int] = (64, 64),
                 activation: str = "tanh", normalizer: RunningNormalization | None = None,
                 shared_hidden: list | None = None, encoder: keras.layers.Layer | None = None,
                 recurrent: RecurrentCore | None = None, state_key: str = "value", action_mask: str | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.mask_key = action_mask
        self.encoder = ObservationEncoder(without_mask(observation, action_mask), normalizer,
                                          flatten=encoder is None)
        self.features = encoder
        self.recurrent = recurrent
        self.state_key = state_key
        self.hidden = shared_hidden if shared_hidden is not None else mlp(hidden_sizes, activation, "value_hidden")
        track_layers(self, self.hidden, "hidden")
        self.output_layer = _dense(1, None, 1.0, "value")

    def values_of(self, features) -> tf.Tensor:
        """Values `[batch]` from the torso's output."""
        return tf.squeeze(self.output_layer(features), axis=-1)

    def call(self, inputs):
        return self.values_of(self.torso(inputs))

    def sequence(self, inputs):
        """`(values, received, final)` over a sequence input (see `Torso.torso_and_state`)."""
        features, received, final = self.torso_and_state(inputs)
        return self.values_of(features), received, final
