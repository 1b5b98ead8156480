"""Where a directory's checkpoints are: the index file, the prefixes on disk, and the leftovers of a write.

TensorFlow's index file `checkpoint` names the newest checkpoint; tfpg numbers
checkpoints by env steps, so the ones on disk are also found (and ordered)
without it, and a damaged index hides none.
"""

from __future__ import annotations

import os
import shutil

import tensorflow as tf


def index_file(directory: str) -> str:
    """The path of the directory's index file."""
    return os.path.join(directory, "checkpoint")


def newest_by_index(directory: str) -> str | None:
    """The newest checkpoint the directory's index file names, if the file is readable and it exists."""
    try:
        prefix = tf.train.latest_checkpoint(directory)
    except ValueError:  # an empty or garbled index file
        return None
    return prefix if prefix is not None and os.path.exists(prefix + ".index") else None


def _number(prefix: str) -> int:
    tail = prefix.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def checkpoint_prefixes(directory: str) -> list[str]:
    """Every checkpoint in `directory`, newest first: the one its index file names, then the others on
    disk by their number (tfpg numbers checkpoints by env steps), so a damaged index hides none."""
    directory = os.fspath(directory)
    on_disk = sorted((os.path.join(directory, name[:-len(".index")]) for name in os.listdir(directory)
                      if name.endswith(".index")), key=_number, reverse=True)
    newest = newest_by_index(directory)
    return ([newest] if newest else []) + [prefix for prefix in on_disk if prefix != newest]


def resolve(path: str) -> str:
    """The checkpoint prefix for a directory (its newest checkpoint) or a prefix.

    Raises:
        FileNotFoundError: if there is no checkpoint there.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        prefixes = checkpoint_prefixes(path)
        if not prefixes:
            damaged = " Its index file 'checkpoint' is unreadable, and" if os.path.exists(index_file(path)) and \
                newest_by_index(path) is None else ""
            raise FileNotFoundError(
                f"No tfpg checkpoint found in directory {path!r}.{damaged} no '<prefix>.index' file is there. Pass "
                f"the directory given to agent.save(...) or a run's checkpoint directory (<logdir>/checkpoints)."
            )
        return prefixes[0]
    if os.path.exists(path + ".index"):
        return path
    raise FileNotFoundError(
        f"No checkpoint at {path!r}: it is neither a checkpoint directory nor a checkpoint prefix "
        f"(a prefix has a '<prefix>.index' file)."
    )


def remove_temporaries(directory: str) -> None:
    """Deletes the `<prefix>_temp*` folders TensorFlow writes a checkpoint's shards into before renaming them."""
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        if "_temp" in name and name.startswith("ckpt-"):
            path = os.path.join(directory, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)


def set_aside_unreadable_index(directory: str) -> None:
    """Renames an index file TensorFlow cannot parse to `checkpoint.unreadable`, so a new one can be written.

    The checkpoints it listed stay on disk, and `checkpoint_prefixes` still finds them."""
    index = index_file(directory)
    if os.path.exists(index) and newest_by_index(directory) is None:
        os.replace(index, index + ".unreadable")
