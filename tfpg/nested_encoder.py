"""tfpg's default encoder of `Dict` and `Tuple` observations: one encoder per leaf, concatenated.

Image leaves go through tfpg's CNN (`tfpg.image_encoder`); `Box` vectors (already normalised) and
one-hot `Discrete` leaves are flattened. The concatenation feeds tfpg's hidden layers.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfpg.image_encoder import ImageEncoder, is_image
from tfpg.observations import ObservationSpec


class NestedEncoder(keras.layers.Layer):
    """Preprocessed nested observations → `[batch, features]`: a CNN per image leaf, the others flattened.

    Args:
        description: the nested observation space's description.
    """

    def __init__(self, description: dict, **kwargs):
        super().__init__(**kwargs)
        self.spec = ObservationSpec(description)
        self.images = {}
        for leaf in self.spec.leaves:
            if is_image(leaf.description):
                encoder = ImageEncoder(leaf.shape, name=f"image_encoder_{leaf.path}")
                setattr(self, f"image_encoder_{leaf.path}", encoder)  # tracked by name for checkpoints
                self.images[leaf.path] = encoder

    def call(self, observations):
        parts = []
        for leaf, value in zip(self.spec.leaves, tf.nest.flatten(observations)):
            features = self.images[leaf.path](value) if leaf.path in self.images else value
            parts.append(tf.reshape(features, [tf.shape(features)[0], -1]))
        return tf.concat(parts, axis=-1)


def nested_encoder(observation_space) -> NestedEncoder:
    """The default encoder for a Gymnasium `Dict` or `Tuple` observation space (a factory, like the user's)."""
    from tfpg.space_descriptions import describe_observation_space

    return NestedEncoder(describe_observation_space(observation_space))
