"""Rebuilding an agent from a checkpoint: `tfpg.load`, and the newest intact checkpoint of a directory.

Above `tfpg.checkpoint` (which saves and restores an agent's state) and the
algorithms (which it needs to rebuild an agent by name).
"""

from __future__ import annotations

from tfpg.algorithms import ALGORITHMS
from tfpg.checkpoint import read_metadata, restore
from tfpg.checkpoint_files import checkpoint_prefixes, resolve
from tfpg.config import CHANGEABLE_ON_RESUME
from tfpg.errors import DamagedCheckpointError
from tfpg.network_factories import ROLES


def load_newest_intact(directory: str, **arguments) -> tuple:
    """`load` of the newest checkpoint in `directory` whose files are intact.

    Args:
        directory: a checkpoint directory.
        **arguments: passed to `load`.

    Returns:
        (agent, prefix, skipped): the prefix loaded, and (prefix, reason) for each newer checkpoint that
        was damaged.

    Raises:
        FileNotFoundError: no checkpoint there.
        DamagedCheckpointError: every checkpoint there is damaged (the message names each).
        ValueError: as `load`, for reasons other than damage (those are not skipped).
    """
    skipped = []
    for prefix in checkpoint_prefixes(directory) or [resolve(directory)]:
        try:
            return load(prefix, **arguments), prefix, skipped
        except DamagedCheckpointError as error:
            skipped.append((prefix, str(error)))
    raise DamagedCheckpointError(f"Every checkpoint in {directory!r} is damaged: "
                                 + " ".join(reason for _, reason in skipped))


def load(path: str, encoder=None, policy=None, value=None, **changes):
    """Rebuilds the agent saved at `path` (a directory or a prefix), ready to resume.

    Args:
        path: a directory passed to `agent.save` (its newest checkpoint is used)
            or a checkpoint prefix.
        encoder, policy, value: the network factories of an agent built with
            user networks. Needed only for those the checkpoint could not record
            by name (lambdas, closures); a factory recorded as a registered name
            or `module:factory` is found again by that name.
        **changes: new values of hyperparameters that may change when a run
            continues (`tfpg.config.CHANGEABLE_ON_RESUME`: the learning rate and its
            schedule, the gradient clip, the entropy weight, the trust regions,
            `non_finite_env_data`), e.g. `learning_rate=1e-4`; the checkpoints the
            agent writes from then on record them.

    Returns:
        The agent, with hyperparameters, spaces and state as saved (and `changes`).

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: unreadable, corrupted or foreign checkpoint, or a change of
            a hyperparameter that cannot change.
    """
    prefix = resolve(path)
    metadata = read_metadata(prefix)
    algorithm = ALGORITHMS.get(metadata["algorithm"])
    if algorithm is None:
        raise ValueError(
            f"Checkpoint {prefix!r} was written by unknown algorithm {metadata['algorithm']!r}; "
            f"this tfpg knows {', '.join(sorted(ALGORITHMS))}."
        )
    fixed = sorted(set(changes) - set(CHANGEABLE_ON_RESUME))
    if fixed:
        written = ", ".join(f"{name}={metadata['config'].get(name)!r}" for name in fixed)
        raise ValueError(f"{', '.join(fixed)} cannot change when a run continues (the checkpoint {prefix!r} was "
                         f"written with {written}); only "
                         f"{', '.join(CHANGEABLE_ON_RESUME)} can. Start a new run to train with other values.")
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in metadata["config"].items()}
    config.update(changes)
    agent = algorithm(seed=metadata["seed"], **_network_arguments(metadata.get("networks", {}), prefix,
                                                                   encoder=encoder, policy=policy, value=value),
                      **config)
    agent.build(metadata["observation_space"], metadata["action_space"])
    restore(agent, prefix)
    return agent


def _network_arguments(recorded: dict, prefix: str, **given) -> dict:
    """The network factories to rebuild a checkpoint's agent with: those given, else the recorded names.

    Raises:
        ValueError: a network the checkpoint used has no recorded name and was
            not given, or one was given that the checkpoint did not use.
    """
    arguments = {}
    for role in ROLES:
        if given[role] is not None:
            if role not in recorded:
                used = ", ".join(f"{r}=" for r in recorded) or "tfpg's default networks"
                raise ValueError(f"Checkpoint {prefix!r} was written without a {role}= network (it used {used}); "
                                 f"do not pass {role}= to load it.")
            arguments[role] = given[role]
        elif role in recorded:
            if recorded[role] is None:
                raise ValueError(
                    f"Checkpoint {prefix!r} was written with {'an' if role == 'encoder' else 'a'} {role}= factory "
                    f"that has no importable name (a lambda, a nested function or a function of the __main__ "
                    f"script). Pass it again: tfpg.load(path, {role}=fn); or, for the next run, give it a name "
                    f"with tfpg.register_network(name, fn), or define it in an importable module."
                )
            arguments[role] = recorded[role]
    return arguments
