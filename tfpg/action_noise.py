"""Sampling tfpg's action distributions from noise drawn outside them, so that each env copy's actions can come
from its own random stream (`tfpg.acting`) whichever process and batch of copies computes them.

For one env copy and step: Box actions are μ + σ ε with ε standard normal; MultiBinary ones 1[u < sigmoid(ℓ)];
categorical ones (Discrete, MultiDiscrete) argmax(ℓ + g) with g = −log(−log u) Gumbel noise (the Gumbel-max
trick), u uniform on [0, 1). Each is an exact sample of the distribution.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfpg.space_descriptions import action_size


def noise_shape(action: dict) -> tuple:
    """The shape of one env copy's noise at one step: `[A]` for Box and MultiBinary actions, `[D, K]` (heads ×
    the most classes of a head) for categorical ones."""
    kind = action["type"]
    if kind in ("Box", "MultiBinary"):
        return (action_size(action),)
    nvec = [action["n"]] if kind == "Discrete" else list(action["nvec"])
    return (len(nvec), max(nvec))


def draw_noise(rng: np.random.Generator, steps: int, action: dict) -> np.ndarray:
    """`[steps, *noise_shape]` noise for one env copy: standard normal for Box actions, else uniform [0, 1)."""
    shape = (steps, *noise_shape(action))
    return rng.standard_normal(shape) if action["type"] == "Box" else rng.random(shape)


def gumbel(uniform: np.ndarray) -> np.ndarray:
    """Gumbel noise −log(−log u) from uniform noise (float64; finite at u = 0)."""
    return -np.log(-np.log(uniform + 1e-300) + 1e-300)


def model_noise(noise: np.ndarray, action: dict) -> np.ndarray:
    """`draw_noise`'s noise as `sample_with_noise` takes it: float32, made Gumbel noise for categorical actions."""
    if action["type"] in ("Discrete", "MultiDiscrete"):
        return gumbel(noise).astype(np.float32)
    return noise.astype(np.float32)


def sample_with_noise(distribution, noise: tf.Tensor, action: dict) -> tf.Tensor:
    """Flat actions `[N, A]` sampled from a tfpg policy head's distribution with the rows' `model_noise`."""
    base = distribution.distribution
    kind = action["type"]
    if kind == "Box":
        return base.loc + base.scale * noise
    if kind == "MultiBinary":
        return tf.cast(noise < tf.sigmoid(base.logits), tf.int32)
    return tf.argmax(base.logits + noise, axis=-1, output_type=tf.int32)
