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
import re
import uuid

import tensorflow as tf

from tfpg.checkpoint_files import (checkpoint_prefixes, newest_by_index, remove_temporaries, resolve,
                                   set_aside_unreadable_index)
from tfpg.config import CHANGEABLE_ON_RESUME, VALUES_OF_UNRECORDED_SETTINGS, describe_changes, resume_conflicts
from tfpg.errors import CheckpointWriteError, DamagedCheckpointError
from tfpg.space_descriptions import same_action_spaces, same_observation_spaces

_METADATA_KEY = "metadata/.ATTRIBUTES/VARIABLE_VALUE"
# State that checkpoints of older versions lack; restoring one of those leaves it as the agent has it.
OPTIONAL_CHILDREN = ("recent_episodes",)


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
        raise DamagedCheckpointError(
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
    if isinstance(metadata.get("config"), dict):
        metadata["config"] = {**VALUES_OF_UNRECORDED_SETTINGS, **metadata["config"]}
    return metadata


def check_compatible(metadata: dict, agent, prefix: str) -> None:
    """Raises a `ValueError` saying what a checkpoint holds if it cannot restore into `agent`."""
    expected = json.loads(agent._metadata_json())
    held = {"algorithm": metadata["algorithm"], "networks": sorted(metadata.get("networks", {}))}
    wanted = {"algorithm": expected["algorithm"], "networks": sorted(expected.get("networks", {}))}
    for name in ("hidden_sizes", "activation", "normalize_observations", "shared_network"):
        held[name] = metadata["config"].get(name)
        wanted[name] = expected["config"].get(name)
    spaces_match = same_observation_spaces(metadata["observation_space"], expected["observation_space"]) \
        and same_action_spaces(metadata["action_space"], expected["action_space"])
    if held != wanted or not spaces_match:
        held.update(observation_space=metadata["observation_space"], action_space=metadata["action_space"])
        wanted.update(observation_space=expected["observation_space"], action_space=expected["action_space"])
        raise ValueError(
            f"Checkpoint {prefix!r} does not match this agent. It contains {held}; this agent "
            f"expects {wanted}. Use tfpg.load(path) to rebuild the agent that wrote it."
        )


def check_resumable(metadata: dict, agent, prefix: str) -> None:
    """Raises a `ValueError` naming each hyperparameter of `agent` that contradicts the checkpoint's run.

    Only the settings in `tfpg.config.CHANGEABLE_ON_RESUME` may differ; `restore` applies those.
    """
    conflicts = resume_conflicts(metadata["config"], agent.config.to_dict())
    if conflicts:
        raise ValueError(
            f"Checkpoint {prefix!r} was written with {describe_changes(conflicts)}: a run cannot continue with "
            f"other values of these (only {', '.join(CHANGEABLE_ON_RESUME)} can change). Build the agent with the "
            f"checkpoint's values, or continue with tfpg.load(path, learning_rate=...) to change those that can."
        )


def held_shapes(prefix: str) -> dict[str, list[int]]:
    """Key → shape of every value the checkpoint at `prefix` holds."""
    return tf.compat.v1.train.NewCheckpointReader(prefix).get_variable_to_shape_map()


def _layout(checkpoint: tf.train.Checkpoint) -> dict[str, list[int]]:
    """Key → shape of every value `checkpoint` would write (written to TensorFlow's in-memory file system)."""
    scratch = f"ram://tfpg-layout-{uuid.uuid4().hex}"
    try:
        prefix = checkpoint.write(f"{scratch}/ckpt")
        return held_shapes(prefix)
    finally:
        if tf.io.gfile.exists(scratch):
            tf.io.gfile.rmtree(scratch)


def _natural(key: str) -> list:
    """Sort key that orders `.../2/...` before `.../10/...`."""
    return [int(part) if part.isdigit() else part for part in key.split("/")]


def _variable_named(root, key: str) -> str:
    """The Keras path of the variable a checkpoint key leads to from `root`, with the key."""
    name = key.replace("/.ATTRIBUTES/VARIABLE_VALUE", "")
    target = root
    for part in name.split("/"):
        try:
            target = target[int(part)] if part.isdigit() else getattr(target, part)
        except (AttributeError, IndexError, KeyError, TypeError):
            return name
    path = getattr(target, "path", None)
    return f"{path} (checkpoint key {name})" if path else name


def check_layout(agent, prefix: str, held: dict[str, list[int]]) -> None:
    """Raises a `ValueError` naming the first variable of the agent that the checkpoint lacks or holds in
    another shape (values the checkpoint holds beyond the agent's, such as an older version's state, are
    ignored, as `restore` does).

    Checked before anything is restored, so a mismatch leaves the agent untouched. `held` is
    `held_shapes(prefix)`.
    """
    wanted = _layout(agent._checkpoint)
    for key in sorted(wanted, key=_natural):
        if key.startswith(("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/")) or \
                (key.split("/")[0] in OPTIONAL_CHILDREN and key not in held):
            continue
        name = _variable_named(agent._checkpoint, key)
        if key not in held:
            problem = f"this agent has {name} of shape {wanted[key]}, which the checkpoint does not hold"
        elif held[key] != wanted[key]:
            problem = f"{name} has shape {held[key]} in the checkpoint but {wanted[key]} in this agent"
        else:
            continue
        raise ValueError(
            f"Checkpoint {prefix!r} was written by networks of another architecture: {problem}. Build the agent "
            f"with the networks (factories and hyperparameters) that wrote it, or use tfpg.load(path)."
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
        existing, held = _newest_readable_metadata(directory) if os.path.isdir(directory) else (None, None)
        if existing is not None:
            check_compatible(held, agent, existing)
            mine = json.loads(agent._metadata_json())
            if held["seed"] != mine["seed"] or resume_conflicts(held["config"], mine["config"]):
                raise ValueError(
                    f"{directory!r} holds checkpoints of another run (seed {held['seed']}, hyperparameters "
                    f"{held['config']}); refusing to write into it. Save into a new directory, or restore "
                    f"that run with tfpg.load to continue it."
                )
        set_aside_unreadable_index(directory)
        remove_temporaries(directory)  # left by a process killed while it wrote a checkpoint
        manager = tf.train.CheckpointManager(agent._checkpoint, directory, max_to_keep=max_to_keep)
        agent._managers[directory] = manager
    try:
        return manager.save(checkpoint_number=agent.total_steps)
    except (OSError, tf.errors.OpError) as error:
        remove_temporaries(directory)
        newest = newest_by_index(directory)
        raise CheckpointWriteError(
            f"Could not write a checkpoint at {agent.total_steps} steps into {directory!r} ({_reason(error)}). "
            + (f"The checkpoints already there are intact; the newest is {os.path.basename(newest)}."
               if newest else "No checkpoint of this run was written yet.")
            + " Free disk space (or fix the directory) and continue from the newest checkpoint."
        ) from None


def _reason(error: Exception) -> str:
    """The first line of an OS or TensorFlow error's message."""
    text = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:\w+\]", "", getattr(error, "message", None) or str(error)).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def _newest_readable_metadata(directory: str) -> tuple:
    """(prefix, metadata) of the newest checkpoint in `directory` whose metadata reads, or (None, None)."""
    for prefix in checkpoint_prefixes(directory):
        try:
            return prefix, read_metadata(prefix)
        except DamagedCheckpointError:
            continue
    return None, None


def restore(agent, path: str) -> str:
    """Restores `agent` in place from a checkpoint directory or prefix; returns the prefix used.

    An agent not built yet is built for the checkpoint's spaces first. The agent's hyperparameters must
    be the checkpoint's, except those that may change when a run continues (`CHANGEABLE_ON_RESUME`):
    the agent's values of those are applied, so the learning rate the agent was given is the one used.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: unreadable, corrupted or foreign checkpoint, or one of other hyperparameters
            (nothing is built or restored then).
    """
    prefix = resolve(path)
    metadata = read_metadata(prefix)
    if not agent.built:  # checked before building, so a refused checkpoint leaves the agent as it was
        if metadata["algorithm"] != agent.name:
            raise ValueError(f"Checkpoint {prefix!r} was written by {metadata['algorithm']}, not {agent.name}. "
                             f"Use tfpg.load(path) to rebuild the agent that wrote it.")
        check_resumable(metadata, agent, prefix)
        agent.build(metadata["observation_space"], metadata["action_space"])
    check_compatible(metadata, agent, prefix)
    check_resumable(metadata, agent, prefix)
    held = held_shapes(prefix)
    check_layout(agent, prefix, held)
    children = {name: child for name, child in agent._checkpoint_children.items()
                if name not in OPTIONAL_CHILDREN or any(key.startswith(name + "/") for key in held)}
    try:
        tf.train.Checkpoint(**children).restore(prefix).assert_existing_objects_matched()
    except Exception as error:  # damaged data files surface as several error types
        raise DamagedCheckpointError(
            f"Checkpoint {prefix!r} could not be restored ({error.__class__.__name__}: {error}). "
            f"It may be corrupted; restore an earlier checkpoint of the same directory by its prefix."
        ) from None
    agent.env_id = agent.env_id or metadata.get("env")
    agent._metadata.assign(agent._metadata_json())  # later checkpoints record the settings now in use
    agent._apply_learning_rate()
    return prefix
