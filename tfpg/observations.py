"""Observations as nests: one place for what an observation space's values look like to tfpg.

A `Dict` or `Tuple` observation is a nest (dict or tuple, as Gymnasium gives
it) of `Box` and `Discrete` leaves; any other observation is one leaf. Arrays of
a batch carry the batch axes first in every leaf. `tf.nest` orders dict keys
sorted, as Gymnasium's `Dict` does.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import tensorflow as tf

from tfpg.image_encoder import is_image


def is_nested(description: dict) -> bool:
    """Whether a described observation space is a `Dict` or `Tuple` of spaces."""
    return description["type"] in ("Dict", "Tuple")


class Leaf:
    """One leaf space of an observation: its description, its path and how the models receive it.

    Args:
        description: the leaf's space description (`Box` or `Discrete`).
        path: its keys and indices from the root, joined by '_' ('' for a single leaf).
    """

    def __init__(self, description: dict, path: str):
        self.description = description
        self.path = path
        self.shape = () if description["type"] == "Discrete" else tuple(description["shape"])
        if is_image(description):
            self.dtype = tf.uint8
        elif description["type"] == "Discrete":
            self.dtype = tf.int32
        else:
            self.dtype = tf.float32

    def __repr__(self):
        return f"Leaf({self.path!r}, {self.description['type']}{list(self.shape)})"


def _structure(description: dict, path: str):
    if description["type"] == "Dict":
        return {key: _structure(space, f"{path}_{key}" if path else key)
                for key, space in description["spaces"].items()}
    if description["type"] == "Tuple":
        return tuple(_structure(space, f"{path}_{index}" if path else str(index))
                     for index, space in enumerate(description["spaces"]))
    return Leaf(description, path)


def _values_up_to(structure, value) -> list:
    """The values at the leaves of `structure` in `value`, dict keys sorted as `tf.nest` orders them."""
    if isinstance(structure, dict):
        if not isinstance(value, dict) or set(value) != set(structure):
            raise ValueError(f"expected a dict with keys {sorted(structure)}, got {type(value).__name__}"
                             + (f" with keys {sorted(value)}" if isinstance(value, dict) else ""))
        return [item for key in sorted(structure) for item in _values_up_to(structure[key], value[key])]
    if isinstance(structure, tuple):
        if not isinstance(value, (tuple, list)) or len(value) != len(structure):
            raise ValueError(f"expected a tuple of {len(structure)} entries, got {type(value).__name__}"
                             + (f" of {len(value)}" if isinstance(value, (tuple, list)) else ""))
        return [item for part, entry in zip(structure, value) for item in _values_up_to(part, entry)]
    return [value]


class ObservationSpec:
    """The leaves of an observation space and conversions of nests of its values.

    Args:
        description: an observation space description.
    """

    def __init__(self, description: dict):
        self.description = description
        self.nested = is_nested(description)
        self.structure = _structure(description, "")
        self.leaves: list[Leaf] = tf.nest.flatten(self.structure)

    def map(self, function: Callable, *nests) -> Any:
        """`function(leaf, *values)` on every leaf, as a nest of the observation's structure.

        The nests are taken apart only down to the observation's structure, so a
        leaf's value may itself be a list (of numbers, say).
        """
        columns = [self.flatten(nest) for nest in nests]
        results = [function(leaf, *values) for leaf, *values in zip(self.leaves, *columns)]
        return tf.nest.pack_sequence_as(self.structure, results)

    def flatten(self, observations) -> list:
        """The values of a nest's leaves, in the spec's leaf order (a leaf's value may be a list).

        Raises:
            ValueError: if the nest does not have the observation's structure.
        """
        return _values_up_to(self.structure, observations)

    def stored_bytes(self) -> int:
        """Bytes one observation takes in a rollout: each leaf in its space's dtype (int64 where none is given)."""
        return sum(int(np.prod(leaf.shape, dtype=np.int64)) * np.dtype(leaf.description.get("dtype", "int64")).itemsize
                   for leaf in self.leaves)

    def model_input(self, observations) -> Any:
        """A batch (NumPy nest) as the tensors the models take (their dtypes)."""
        return self.map(lambda leaf, value: tf.convert_to_tensor(np.asarray(value, leaf.dtype.as_numpy_dtype)),
                        observations)

    def tensor_specs(self) -> Any:
        """`tf.TensorSpec`s `[None, *shape]` of a batch, as the models take it."""
        return self.map(lambda leaf: tf.TensorSpec((None, *leaf.shape), leaf.dtype, name=leaf.path or None))

    def example_batch(self, size: int) -> Any:
        """`size` valid observations (zeros; each Discrete leaf's first value) as model tensors."""
        def example(leaf):
            if leaf.description["type"] == "Discrete":
                return tf.fill([size], tf.constant(leaf.description["start"], leaf.dtype))
            return tf.zeros([size, *leaf.shape], leaf.dtype)

        return self.map(example)


def map_arrays(function: Callable, *nests) -> Any:
    """`function` on every array of NumPy nests of the same structure."""
    return tf.nest.map_structure(function, *nests)


def stack(batches: list) -> Any:
    """Nests of arrays stacked along a new first axis, leaf by leaf."""
    return tf.nest.map_structure(lambda *values: np.stack(values), *batches)


def concatenate(batches: list, axis: int) -> Any:
    """Nests of arrays joined along an existing `axis`, leaf by leaf."""
    return tf.nest.map_structure(lambda *values: np.concatenate(values, axis=axis), *batches)


def batch_size(observations) -> int:
    """The length of the first axis of a nest of arrays."""
    return len(tf.nest.flatten(observations)[0])


def finite_rows(observations, rows: int) -> np.ndarray:
    """`[rows]`: True where every leaf's row is finite."""
    finite = np.ones(rows, bool)
    for value in tf.nest.flatten(observations):
        finite &= np.isfinite(np.reshape(value, (rows, -1))).all(axis=1)
    return finite


def select_rows(mask: np.ndarray, chosen, otherwise) -> Any:
    """Rows of `chosen` where `mask` is True, of `otherwise` elsewhere, leaf by leaf."""
    def select(a, b):
        return np.where(mask.reshape((-1,) + (1,) * (np.ndim(a) - 1)), a, b)

    return tf.nest.map_structure(select, chosen, otherwise)


def with_rows(observations, rows: np.ndarray, values: list) -> Any:
    """A copy of a batch nest with row `rows[k]` replaced by the single observation `values[k]`."""
    copied = tf.nest.map_structure(lambda value: np.array(value, copy=True), observations)
    leaves = tf.nest.flatten(copied)
    for row, value in zip(rows, values):
        for leaf, part in zip(leaves, tf.nest.flatten(value)):
            leaf[row] = part
    return copied
