"""A NumPy mirror of a policy network, for acting on the small batches of env stepping.

Collecting experience calls the policy once per env step on a batch of one
observation per env copy. For such batches a TensorFlow call costs far more
than the arithmetic (a fixed cost of ~0.1 ms, and much more when the machine is
busy), so collection acts with this mirror: the same layers, computed in NumPy
from a copy of the weights and observation statistics taken at the start of
each batch. Only the sampled actions come from here; their log-probabilities
and values are recomputed by the Keras models, so updates stay exact.

Every row of a batch is computed independently of the other rows: the action of
an env copy does not depend on how many copies are stepped together (see
`_matmul`), which lets copies split across processes act exactly as one vector env.
"""

from __future__ import annotations

import keras
import numpy as np

from tfpg.action_masks import split_mask, without_mask
from tfpg.action_noise import draw_noise, gumbel
from tfpg.nested_encoder import NestedEncoder
from tfpg.networks import PolicyNetwork
from tfpg.observations import ObservationSpec

# Keyed by the Keras function object itself: a Dense layer holds the function, not its name.
_ACTIVATIONS = {
    keras.activations.tanh: np.tanh,
    keras.activations.relu: lambda x: np.maximum(x, 0.0),
    keras.activations.elu: lambda x: np.where(x > 0.0, x, np.expm1(np.minimum(x, 0.0))),
    keras.activations.silu: lambda x: x / (1.0 + np.exp(-x)),
}


def _matmul(rows: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """`rows @ kernel`, each row's result independent of the number of rows.

    BLAS picks its kernels by the matrix sizes, and their rounding differs (a row
    of a 5-row product can differ in its last bit from the same row in a 4-row
    product); einsum's own loops sum every row in the same order whatever the
    batch. For the small batches of env stepping they cost a few microseconds.
    """
    return np.einsum("ij,jk->ik", rows, kernel)


def mirrors(policy) -> bool:
    """Whether the mirror computes `policy` exactly: tfpg's own MLP policy, known activations, and no encoder
    but tfpg's Dict and Tuple encoder without images (which flattens and concatenates the entries).

    Decided by the model's structure (its class, encoder and each hidden layer's
    type and activation function), so any other model acts through TensorFlow.
    """
    features = policy.features if type(policy) is PolicyNetwork else None
    flat_features = features is None or (type(features) is NestedEncoder and not features.images)
    return (type(policy) is PolicyNetwork and flat_features and policy.recurrent is None
            and all(type(layer) is keras.layers.Dense and layer.activation in _ACTIVATIONS
                    for layer in policy.hidden))


class NumpyPolicy:
    """Samples the actions of a `PolicyNetwork` with NumPy.

    Args:
        policy: the `tfpg.networks.PolicyNetwork` to mirror (see `mirrors`).
        observation: its observation space description.
        action: its action space description.
    """

    def __init__(self, policy, observation: dict, action: dict):
        if not mirrors(policy):
            raise ValueError(f"NumpyPolicy mirrors only tfpg's MLP policies with known activations; got {policy!r}.")
        self.policy = policy
        self.observation = observation
        self.action = action
        self.mask_key = policy.mask_key
        # the entries the network reads, in the order tfpg's Dict encoder concatenates them (the mask aside)
        self.spec = ObservationSpec(without_mask(observation, self.mask_key))
        # built once: `_outputs` runs at every env step
        self.one_hots = {leaf.path: np.eye(leaf.description["n"], dtype=np.float32) for leaf in self.spec.leaves
                         if leaf.description["type"] == "Discrete"}
        self.refresh()

    def refresh(self) -> None:
        """Copies the current weights and observation statistics."""
        self.layers = [(layer.kernel.numpy(), layer.bias.numpy(), _ACTIVATIONS[layer.activation])
                       for layer in self.policy.hidden]
        head = self.policy.head
        self.projection = (head.projection.kernel.numpy(), head.projection.bias.numpy())
        if self.action["type"] == "Box":
            self.std = np.exp(head.log_std.numpy())
        elif self.action["type"] != "MultiBinary":
            self.padding = head.padding.numpy()
        encoder = self.policy.encoder
        encoders = {leaf.path: encoder.parts[leaf.path] for leaf in self.spec.leaves} if self.spec.nested \
            else {"": encoder}
        self.normalization = {}
        for leaf in self.spec.leaves:
            normalizer = encoders[leaf.path].normalizer
            if normalizer is not None and leaf.description["type"] == "Box":
                mean, variance = normalizer.mean.numpy(), normalizer.variance.numpy()
                self.normalization[leaf.path] = (mean, np.sqrt(variance + normalizer.epsilon), normalizer.clip)

    def _leaf_features(self, leaf, values) -> np.ndarray:
        """One entry's features `[N, size]`, as `tfpg.networks.ObservationEncoder` makes them."""
        if leaf.description["type"] == "Discrete":
            return self.one_hots[leaf.path][np.reshape(values, -1) - leaf.description["start"]]
        features = np.reshape(values, (len(values), -1)).astype(np.float32)
        if leaf.path in self.normalization:
            mean, std, clip = self.normalization[leaf.path]
            features = np.clip((features - mean) / std, -clip, clip).astype(np.float32)
        return features

    def _outputs(self, observations) -> tuple[np.ndarray, np.ndarray | None]:
        """The head's projection `[N, units]` and the action mask (None without one)."""
        observations, mask = split_mask(observations, self.mask_key)
        parts = [self._leaf_features(leaf, values)
                 for leaf, values in zip(self.spec.leaves, self.spec.flatten(observations))]
        features = parts[0] if len(parts) == 1 and not self.spec.nested else np.concatenate(parts, axis=1)
        for kernel, bias, activation in self.layers:
            features = activation(_matmul(features, kernel) + bias)
        kernel, bias = self.projection
        return _matmul(features, kernel) + bias, mask

    def _logits(self, outputs: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        categories = self.padding.shape
        logits = outputs.reshape((len(outputs), *categories)) + self.padding
        return logits if mask is None else self.policy.head.masked_logits.numpy(logits, mask)

    def draw_noise(self, rng: np.random.Generator, steps: int) -> np.ndarray:
        """`[steps, *noise_shape]` noise for one env copy (`tfpg.action_noise.draw_noise`)."""
        return draw_noise(rng, steps, self.action)

    def sample(self, observations: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Flat sampled actions `[N, A]` (float32 for Box, int32 otherwise), as the policy's `sample()`.

        Args:
            observations: `[N, *obs_shape]` (a nest of such arrays for Dict and Tuple observations).
            noise: `[N, *noise_shape]` from `draw_noise`: Box actions are μ + σ ε, MultiBinary ones
                1[u < sigmoid(logit)], categorical ones argmax(logits + Gumbel(u)).
        """
        outputs, mask = self._outputs(observations)
        kind = self.action["type"]
        if kind == "Box":
            return (outputs + self.std * noise).astype(np.float32)
        if kind == "MultiBinary":
            probabilities = 1.0 / (1.0 + np.exp(-outputs))
            return (noise < probabilities).astype(np.int32)
        return np.argmax(self._logits(outputs, mask) + gumbel(noise), axis=-1).astype(np.int32)

    def mode(self, observations: np.ndarray) -> np.ndarray:
        """Flat deterministic actions `[N, A]`, as the policy's `mode()`."""
        outputs, mask = self._outputs(observations)
        kind = self.action["type"]
        if kind == "Box":
            return outputs.astype(np.float32)
        if kind == "MultiBinary":
            return (outputs > 0.0).astype(np.int32)
        return np.argmax(self._logits(outputs, mask), axis=-1).astype(np.int32)
