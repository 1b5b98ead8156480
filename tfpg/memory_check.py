"""Refusing a batch that cannot fit in memory, before anything is collected or written.

A batch costs memory twice: the steps it stores, and the activations the networks hold while they evaluate
it and while the update takes gradients. With large images the second dominates (a 1024×1024×3 frame
becomes 12 MB of float32 at the first convolution's input, per row).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

# Operations whose outputs alias their inputs or are the inputs themselves (counted with the stored batch).
_NO_NEW_MEMORY = {"Placeholder", "Identity", "IdentityN", "Reshape", "Squeeze", "ExpandDims", "StopGradient",
                  "Const", "ReadVariableOp", "Shape", "NoOp"}


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def check_allocation(needed: int, what: str, fix: str) -> None:
    """Raises a `ValueError` naming `what` and `fix` if `needed` bytes exceed the memory available."""
    available = available_memory()
    if available is not None and needed > available:
        raise ValueError(f"{what} needs about {needed / 2**30:.3g} GiB, but {available / 2**30:.3g} GiB of memory is "
                         f"available. {fix}")


def activation_bytes(function: tf.types.experimental.ConcreteFunction) -> tuple[int, int]:
    """The bytes per batch row of the tensors a traced function computes: their sum and the largest one.

    Counted are the outputs of the graph's operations whose leading dimension is the batch (unknown when
    traced) and whose other dimensions are known; views and the inputs themselves are not counted.

    Args:
        function: a concrete function traced with an unknown batch size.

    Returns:
        `(total, largest)`, bytes per row.
    """
    total = largest = 0
    for operation in function.graph.get_operations():
        if operation.type in _NO_NEW_MEMORY:
            continue
        for tensor in operation.outputs:
            shape = tensor.shape
            if not tensor.dtype.is_numpy_compatible or shape.rank is None or shape.rank == 0:
                continue
            if shape[0] is not None or not shape[1:].is_fully_defined():
                continue
            size = int(np.prod(shape[1:], dtype=np.int64)) * tensor.dtype.size
            total += size
            largest = max(largest, size)
    return total, largest


def step_bytes(observation_bytes: int, action_size: int, observation_copies: int) -> int:
    """Bytes a batch stores per env step: `observation_copies` observations of `observation_bytes` each
    (`ObservationSpec.stored_bytes`), the action (`action_size` 4-byte entries) and about ten float32 fields."""
    return observation_copies * observation_bytes + 4 * action_size + 40


def check_batch_memory(rollout_steps: int, copies: int, per_step: int, activations: tuple[int, int] = (0, 0),
                       gradient_rows: int | None = None, weight_bytes: int = 0) -> None:
    """Raises a `ValueError` if a batch of `rollout_steps` × `copies` env steps cannot fit in memory.

    The estimate is the stored steps, `steps · per_step`, plus what the networks need beyond their weights
    (which exist already): the gradients and the optimiser's two moments, `3 · weight_bytes`, and the larger
    of two peaks of activations: evaluating the whole batch at once (forward only: about the two largest
    activations alive at a time, `steps · 2 · largest`), and the update's gradients on `gradient_rows` rows at
    once (every activation kept for the backward pass and one gradient of each: `rows · 2 · total`).

    Args:
        rollout_steps: env steps per copy in a batch.
        copies: env copies.
        per_step: stored bytes per step (`step_bytes`).
        activations: `(total, largest)` activation bytes per row (`activation_bytes`).
        gradient_rows: rows of one gradient computation (None: the whole batch).
        weight_bytes: bytes of the trainable weights.
    """
    steps = rollout_steps * copies
    total, largest = activations
    rows = steps if gradient_rows is None else min(gradient_rows, steps)
    stored = steps * per_step
    networks = max(steps * 2 * largest, rows * 2 * total) + 3 * weight_bytes
    available = available_memory()
    if available is None or stored + networks <= available:
        return
    where = (f"{networks / 2**30:.3g} GiB for the networks (activations of {total} bytes per row, for the "
             f"update's gradients on {rows} rows at once or the evaluation of the whole batch, and the update's "
             f"copies of {weight_bytes / 2**20:.3g} MiB of weights)" if networks else "")
    raise ValueError(
        f"A batch of rollout_steps={rollout_steps} × {copies} env copies = {steps} steps needs about "
        f"{(stored + networks) / 2**30:.3g} GiB: {stored / 2**30:.3g} GiB for the stored steps ({per_step} bytes "
        f"per step){' and ' + where if where else ''}, but {available / 2**30:.3g} GiB of memory is available. "
        f"Lower rollout_steps or the number of env copies{', or minibatch_size' if rows < steps else ''}"
        f"{', or make the observations smaller (downscale images)' if networks else ''}.")
