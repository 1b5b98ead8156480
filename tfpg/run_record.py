"""`<logdir>/run.json`: what a launcher run was started with, so `--resume` continues it without flags.

The record holds the env, the step target, the collection settings, how often
checkpoints are written and how many are kept, and the final evaluation's episodes (the
algorithm, seed and hyperparameters are in every checkpoint), and one entry
per launch with what that launch changed. It is replaced atomically.
"""

from __future__ import annotations

import json
import os

RECORD_NAME = "run.json"
# Settings of the launcher that are not in the checkpoint; `env` is fixed for the life of a run. Records of
# earlier versions lack the last four: a resume of such a run takes them from the flags.
SETTINGS = ("env", "steps", "num_envs", "async_envs", "vector_env", "num_workers", "envs_per_worker", "ray_address",
            "checkpoint_seconds", "keep_checkpoints", "eval_episodes", "eval_seconds")


def read_run_record(logdir: str) -> dict | None:
    """The run record of `logdir`, or None if the run has none (it was not started by `tfpg.train`).

    Raises:
        ValueError: the record exists but is not a readable run record.
    """
    path = os.path.join(logdir, RECORD_NAME)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as file:
            record = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is unreadable ({error.__class__.__name__}: {error}). Restore it, or delete it "
                         f"and pass the run's settings (--env and the collection flags) with --resume.") from None
    if not isinstance(record, dict) or not isinstance(record.get("settings"), dict) \
            or not isinstance(record["settings"].get("env"), str):
        raise ValueError(f"{path} is not a tfpg run record (no settings with an env). Delete it and pass the run's "
                         f"settings (--env and the collection flags) with --resume.")
    return record


def write_json(path: str, data) -> None:
    """Writes `data` as JSON to `path`: to a temporary file, flushed, then renamed over the old one.

    On an error (a full disk) the old file is unchanged and the temporary one removed."""
    temporary = path + ".tmp"
    try:
        with open(temporary, "w") as file:
            json.dump(data, file, indent=1)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def write_run_record(logdir: str, record: dict) -> None:
    """Writes `record` as `logdir`'s run record, atomically (`write_json`)."""
    write_json(os.path.join(logdir, RECORD_NAME), record)


def updated_record(record: dict | None, settings: dict, total_steps: int, changes: dict) -> dict:
    """`record` with `settings` as the run's settings and a launch entry of `changes` (name → [old, new]).

    A run without a record starts one here.
    """
    launches = list(record["launches"]) if record else []
    launches.append({"total_steps": int(total_steps), "changed": changes})
    return {"settings": dict(settings), "launches": launches}
