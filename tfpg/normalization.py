"""Running mean/variance statistics as a Keras layer of non-trainable variables."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfpg.image_encoder import is_image
from tfpg.observations import ObservationSpec


class RunningNormalization(keras.layers.Layer):
    """Normalises inputs by running statistics: clip((x − μ) / sqrt(σ² + ε), ±c).

    The statistics are non-trainable variables, so they are saved in
    checkpoints and travel inside exported policies. `call` never changes
    them; `update` folds a batch in with the parallel-variance rule
    (Chan et al.):

        n' = n + m,  μ' = μ + δ m / n',
        σ'² = (σ² n + s² m + δ² n m / n') / n',   δ = batch mean − μ.

    Args:
        size: number of features (the last axis).
        clip: the normalised values are clipped to [−clip, clip].
        epsilon: added to the variance before the square root.
    """

    def __init__(self, size: int, clip: float = 10.0, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)
        self.clip = float(clip)
        self.epsilon = float(epsilon)
        self.mean = self.add_weight(
            shape=(self.size,), initializer="zeros", trainable=False, dtype="float64", name="mean"
        )
        self.variance = self.add_weight(
            shape=(self.size,), initializer="ones", trainable=False, dtype="float64", name="variance"
        )
        self.count = self.add_weight(
            shape=(), initializer="zeros", trainable=False, dtype="float64", name="count"
        )
        self.built = True

    def call(self, inputs):
        mean = tf.cast(self.mean, inputs.dtype)
        std = tf.cast(tf.sqrt(self.variance + self.epsilon), inputs.dtype)
        return tf.clip_by_value((inputs - mean) / std, -self.clip, self.clip)

    def update(self, batch: tf.Tensor) -> None:
        """Folds a `[batch, size]` tensor into the running statistics."""
        batch = tf.cast(tf.reshape(batch, [-1, self.size]), tf.float64)
        batch_count = tf.cast(tf.shape(batch)[0], tf.float64)
        batch_mean, batch_variance = tf.nn.moments(batch, axes=[0])
        count = self.count.value
        total = count + batch_count
        delta = batch_mean - self.mean.value
        new_mean = self.mean.value + delta * batch_count / total
        squares = (
            self.variance.value * count
            + batch_variance * batch_count
            + tf.square(delta) * count * batch_count / total
        )
        self.mean.assign(new_mean)
        self.variance.assign(squares / total)
        self.count.assign(total)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "clip": self.clip, "epsilon": self.epsilon}


class NormalizerSet(keras.layers.Layer):
    """One `RunningNormalization` per leaf of a nested observation that is normalised (non-image `Box` leaves).

    Args:
        spec: the observation's `tfpg.observations.ObservationSpec`.
        paths: the paths of the leaves to normalise.
        sizes: their feature counts.
    """

    def __init__(self, spec, paths: list[str], sizes: list[int], **kwargs):
        super().__init__(**kwargs)
        self.spec = spec
        self.normalizers = {}
        for path, size in zip(paths, sizes):
            normalizer = RunningNormalization(size, name=f"normalizer_{path}")
            setattr(self, f"normalizer_{path}", normalizer)  # tracked by name, so checkpoints see each
            self.normalizers[path] = normalizer
        self.built = True

    def get(self, path: str) -> RunningNormalization | None:
        """The normaliser of a leaf, or None if it is not normalised."""
        return self.normalizers.get(path)

    def update(self, observations) -> None:
        """Folds a batch (a nest of `[batch, ...]` tensors) into each leaf's statistics."""
        for leaf, value in zip(self.spec.leaves, tf.nest.flatten(observations)):
            if leaf.path in self.normalizers:
                self.normalizers[leaf.path].update(value)


def _normalized(description: dict) -> bool:
    return description["type"] == "Box" and not is_image(description)


def observation_normalizer(description: dict, action_mask: str | None = None):
    """The running statistics an observation space is normalised by, or None.

    Non-image `Box` observations get one `RunningNormalization`; `Dict` and
    `Tuple` ones a `NormalizerSet` over their non-image `Box` leaves (None if
    they have none); images, `Discrete` observations and the action mask entry
    `action_mask` (`tfpg.action_masks`) are not normalised.
    """
    spec = ObservationSpec(description)
    if not spec.nested:
        if not _normalized(description):
            return None
        return RunningNormalization(int(np.prod(description["shape"])), name="observation_normalizer")
    leaves = [leaf for leaf in spec.leaves if _normalized(leaf.description) and leaf.path != action_mask]
    if not leaves:
        return None
    return NormalizerSet(spec, [leaf.path for leaf in leaves], [int(np.prod(leaf.shape)) for leaf in leaves],
                         name="observation_normalizer")
