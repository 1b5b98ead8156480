"""Image observations: how they are recognised, and tfpg's default convolutional encoder for them.

An image is a `Box` of dtype uint8, rank 3 and bounds [0, 255], channels last
(H×W×C) or first (C×H×W, as Gymnasium's frame stacking gives them), the same
rule users know from Stable-Baselines3. Images are scaled to [0, 1] inside the
models (never by running statistics) and stay uint8 in rollouts.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from tfpg.memory_check import check_allocation

# Smallest side the Nature CNN (8×8 stride 4, 4×4 stride 2, 3×3 stride 1) can take.
NATURE_MIN_SIDE = 36


def is_image(description: dict) -> bool:
    """Whether a described observation space is an image (see the module docstring)."""
    if description["type"] != "Box" or description["dtype"] != "uint8" or len(description["shape"]) != 3:
        return False
    low, high = description.get("low", 0), description.get("high", 255)
    return np.all(np.asarray(low) == 0) and np.all(np.asarray(high) == 255)


def channels_first(shape) -> bool:
    """Whether an image shape is C×H×W: its first dimension is its smallest and its last is not."""
    return int(np.argmin(shape)) == 0 and shape[0] < shape[-1]


def _conv(filters: int, size: int, stride: int, name: str) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, size, strides=stride, activation="relu", name=name,
                               kernel_initializer=keras.initializers.Orthogonal(gain=math.sqrt(2.0)),
                               bias_initializer="zeros")


class ImageEncoder(keras.layers.Layer):
    """The default encoder of image observations (already scaled to [0, 1]): a CNN to `features` units.

    Images of at least 36 pixels a side get the Nature CNN of Mnih et al. (2015),
    32 8×8/4 → 64 4×4/2 → 64 3×3/1 convolutions then a Dense layer, as in most
    PPO Atari implementations; smaller images get two 3×3/1 convolutions (16, 32)
    instead. Channels-first images are transposed to channels-last first.

    Args:
        shape: the image shape (H×W×C or C×H×W).
        features: width of the final Dense layer.
    """

    def __init__(self, shape, features: int = 512, **kwargs):
        super().__init__(**kwargs)
        self.shape = tuple(int(d) for d in shape)
        self.transpose = channels_first(self.shape)
        height, width = (self.shape[1:] if self.transpose else self.shape[:2])
        if min(height, width) >= NATURE_MIN_SIDE:
            specs = [(32, 8, 4), (64, 4, 2), (64, 3, 1)]
        elif min(height, width) >= 5:
            specs = [(16, 3, 1), (32, 3, 1)]
        else:
            raise ValueError(f"Image observations of shape {self.shape} are too small for tfpg's CNN (at least 5 "
                             f"pixels a side); pass encoder= a network of your own.")
        _check_dense_fits(self.shape, height, width, specs, features)
        self.convolutions = [_conv(f, k, s, f"conv_{i}") for i, (f, k, s) in enumerate(specs)]
        for index, layer in enumerate(self.convolutions):
            setattr(self, f"conv_{index}", layer)  # tracked one by one, so checkpoints see each
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(features, activation="relu", name="features",
                                        kernel_initializer=keras.initializers.Orthogonal(gain=math.sqrt(2.0)))

    def call(self, images):
        features = tf.transpose(images, [0, 2, 3, 1]) if self.transpose else images
        for layer in self.convolutions:
            features = layer(features)
        return self.dense(self.flatten(features))

    def get_config(self):
        return {**super().get_config(), "shape": self.shape, "features": self.dense.units}


def _check_dense_fits(shape: tuple, height: int, width: int, specs: list, features: int) -> None:
    """Refuses images so large that the Dense layer after the convolutions cannot be built in memory
    (initialising an orthogonal kernel holds about six copies of it)."""
    for _, size, stride in specs:
        height, width = (height - size) // stride + 1, (width - size) // stride + 1
    weights = height * width * specs[-1][0] * features
    check_allocation(6 * 4 * weights, f"tfpg's image encoder for {'×'.join(map(str, shape))} images (a Dense layer "
                     f"of {weights:,} weights after its convolutions)",
                     "Downscale the images (e.g. gymnasium.wrappers.ResizeObservation), or pass encoder= a network "
                     "of your own.")


def image_encoder(observation_space) -> ImageEncoder:
    """The default image encoder for a Gymnasium image space (a factory, like the user's)."""
    return ImageEncoder(observation_space.shape)
