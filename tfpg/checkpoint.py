"""Agent checkpoints: `tf.train.Checkpoint` + `CheckpointManager`, with a metadata record.

A checkpoint holds the networks, the optimizer slots, the observation and
reward statistics, the step and iteration counters, the sampling RNG state and
a JSON record of the algorithm, hyperparameters and spaces, so `tfpg.load` can
rebuild the agent without an env. TensorFlow writes each checkpoint under a
temporary name and renames it, and the manager updates its index file
atomically, so an interrupted save leaves the previous checkpoint loadable.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

_METADATA_KEY = "metadata/.ATTRIBUTES/VARIABLE_VALUE"


def resolve(path: str) -> str:
    """The checkpoint prefix for a directory (its newest checkpoint) or a prefix.

    Raises:
        FileNotFoundError: if there is no checkpoint there.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:
            raise FileNotFoundError(
                f"No tfpg checkpoint found in directory {path!r}. Pass the directory given to "
                f"agent.save(...) or a run's checkpoint directory (<logdir>/checkpoints)."
            )
        return prefix
    if os.path.exists(path + ".index"):
        return path
    raise FileNotFoundError(
        f"No checkpoint at {path!r}: it is neither a checkpoint directory nor a checkpoint prefix "
        f"(a prefix has a '<prefix>.index' file)."
    )


def read_metadata(prefix: str) -> dict:
    """The metadata record of a checkpoint.

    Raises:
        ValueError: if the checkpoint is unreadable or not a tfpg checkpoint.
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        has_metadata = reader.has_tensor(_METADATA_KEY)
        raw = reader.get_tensor(_METADATA_KEY) if has_metadata else None
    except Exception as error:  # the reader raises several types on damaged files
        raise ValueError(
            f"Checkpoint {prefix!r} is unreadable (corrupted or truncated): {error.__class__.__name__}. "
            f"Restore an earlier checkpoint of the same directory by passing its prefix."
        ) from None
    if not has_metadata:
        raise ValueError(
            f"Checkpoint {prefix!r} is not a tfpg agent checkpoint (it has no tfpg metadata). "
            f"Load checkpoints written by agent.save(...) or tfpg.train."
        )
    metadata = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    if metadata.get("format") != "tfpg-checkpoint-1":
        raise ValueError(f"Checkpoint {prefix!r} has unknown format {metadata.get('format')!r}.")
    return metadata


def check_compatible(metadata: dict, agent, prefix: str) -> None:
    """Raises a `ValueError` saying what a checkpoint holds if it cannot restore into `agent`."""
    expected = json.loads(agent._metadata_json())
    keys = ("algorithm", "observation_space", "action_space")
    held = {k: metadata[k] for k in keys}
    wanted = {k: expected[k] for k in keys}
    for name in ("hidden_sizes", "activation", "normalize_observations", "shared_network"):
        held[name] = metadata["config"].get(name)
        wanted[name] = expected["config"].get(name)
    if held != wanted:
        raise ValueError(
            f"Checkpoint {prefix!r} does not match this agent. It contains {held}; this agent "
            f"expects {wanted}. Use tfpg.load(path) to rebuild the agent that wrote it."
        )


def save(agent, directory: str, max_to_keep: int = 3) -> str:
    """Saves `agent` into `directory`, keeping the newest `max_to_keep` checkpoints.

    Refuses (before writing) a directory holding another agent's checkpoints.

    Returns:
        The prefix of the checkpoint written.
    """
    directory = os.fspath(directory)
    manager = agent._managers.get(directory)
    if manager is None:
        existing = tf.train.latest_checkpoint(directory) if os.path.isdir(directory) else None
        if existing is not None:
            held = read_metadata(existing)
            check_compatible(held, agent, existing)
            mine = json.loads(agent._metadata_json())
            if (held["seed"], held["config"]) != (mine["seed"], mine["config"]):
                raise ValueError(
                    f"{directory!r} holds checkpoints of another run (seed {held['seed']}, hyperparameters "
                    f"{held['config']}); refusing to write into it. Save into a new directory, or restore "
                    f"that run with tfpg.load to continue it."
                )
        manager = tf.train.CheckpointManager(agent._checkpoint, directory, max_to_keep=max_to_keep)
        agent._managers[directory] = manager
    return manager.save(checkpoint_number=agent.total_steps)


def restore(agent, path: str) -> str:
    """Restores `agent` in place from a checkpoint directory or prefix; returns the prefix used."""
    prefix = resolve(path)
    check_compatible(read_metadata(prefix), agent, prefix)
    try:
        agent._checkpoint.restore(prefix).assert_existing_objects_matched()
    except Exception as error:  # damaged data files surface as several error types
        raise ValueError(
            f"Checkpoint {prefix!r} could not be restored ({error.__class__.__name__}: {error}). "
            f"It may be corrupted; restore an earlier checkpoint of the same directory by its prefix."
        ) from None
    return prefix


def load(path: str):
    """Rebuilds the agent saved at `path` (a directory or a prefix), ready to resume.

    Args:
        path: a directory passed to `agent.save` (its newest checkpoint is used)
            or a checkpoint prefix.

    Returns:
        The agent, with hyperparameters, spaces and state as saved.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: unreadable, corrupted or foreign checkpoint.
    """
    from tfpg.algorithms import ALGORITHMS

    prefix = resolve(path)
    metadata = read_metadata(prefix)
    algorithm = ALGORITHMS.get(metadata["algorithm"])
    if algorithm is None:
        raise ValueError(
            f"Checkpoint {prefix!r} was written by unknown algorithm {metadata['algorithm']!r}; "
            f"this tfpg knows {', '.join(sorted(ALGORITHMS))}."
        )
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in metadata["config"].items()}
    agent = algorithm(seed=metadata["seed"], **config)
    agent.build(metadata["observation_space"], metadata["action_space"])
    restore(agent, prefix)
    return agent
