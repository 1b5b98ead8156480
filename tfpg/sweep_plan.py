"""The trials of a sweep: typed grid and search values, run directories and launcher commands."""

from __future__ import annotations

import dataclasses
import itertools
import os
import sys

from tfpg import ALGORITHMS

SEARCH_KINDS = ("uniform", "loguniform", "int", "choice")


@dataclasses.dataclass(frozen=True)
class Trial:
    """One run of the sweep: an env, a configuration (hyperparameter name → value) and a seed."""

    env: str
    configuration: tuple
    seed: int

    @property
    def configuration_name(self) -> str:
        """`name=value,...` of the grid values, or "defaults"."""
        return ",".join(f"{name}={_format(value)}" for name, value in self.configuration) or "defaults"

    def logdir(self, outdir: str) -> str:
        """`<outdir>/<env>/<configuration>/seed<k>`, or `<outdir>/<env>/seed<k>` without a grid (the env id's
        slashes become underscores)."""
        configuration = [self.configuration_name] if self.configuration else []
        return os.path.join(outdir, self.env.replace("/", "_").replace(":", "_"), *configuration, f"seed{self.seed}")


def _format(value) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _entries(entries: list[str], algorithm: str, flag: str, form: str):
    """(name, field, text) of each `name=text` entry, checked to name distinct hyperparameters."""
    config_class = ALGORITHMS[algorithm].config_class
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    seen = set()
    for entry in entries:
        name, separator, text = entry.partition("=")
        if not separator or not text:
            raise ValueError(f"--{flag}={entry!r} must be {form}")
        if name not in fields:
            raise ValueError(f"--{flag} names {name!r}, which is not a hyperparameter of {algorithm}; its "
                             f"hyperparameters are: {', '.join(sorted(fields))}.")
        if name in seen:
            raise ValueError(f"--{flag} gives {name!r} twice; list all its values in one entry.")
        seen.add(name)
        yield name, fields[name], text


def parse_grid(entries: list[str], algorithm: str) -> dict[str, list]:
    """Grid entries `name=v1,v2` as typed values, checked against the algorithm's hyperparameters.

    Raises:
        ValueError: an entry is malformed, names no hyperparameter of the algorithm, or a value is invalid.
    """
    config_class = ALGORITHMS[algorithm].config_class
    grid = {}
    for name, field, values in _entries(entries, algorithm, "grid", "name=value1,value2,..."):
        grid[name] = [_parse_value(field, text, name) for text in values.split(",")]
        for value in grid[name]:
            config_class.from_kwargs(**{name: value})  # the config's own range checks
    return grid


def _parse_value(field: dataclasses.Field, text: str, name: str):
    default = field.default
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return tuple(int(part) for part in text.split("x")) if text else ()
    except ValueError:
        raise ValueError(f"--grid value {text!r} of {name} is not a {type(default).__name__}"
                         f"{' (integers joined by x, e.g. 64x64)' if isinstance(default, tuple) else ''}.") from None
    return text


def trials(envs: list[str], grid: dict[str, list], seeds: list[int]) -> list[Trial]:
    """Every combination of env, grid values and seed, in that order of nesting."""
    names = list(grid)
    combinations = list(itertools.product(*(grid[name] for name in names)))
    return [Trial(env, tuple(zip(names, values)), seed)
            for env in envs for values in combinations for seed in seeds]


# tfpg.train flags the sweep sets for each trial, and the sweep flag that chooses them
_SET_PER_TRIAL = {"algo": "--algo", "env": "--envs", "steps": "--steps", "seed": "--seeds", "logdir": "--outdir",
                  "resume": "(a rerun of the same command resumes)", "verbose": "(trials run quietly)"}


def check_extra(extra: list[str], varied: list[str]) -> None:
    """Raises a `ValueError` if an `--extra` launcher flag would contradict what the sweep sets per trial.

    Args:
        extra: the `--extra` entries, each one `tfpg.train` flag (`--name=value`, `--name`, `--noname`).
        varied: the hyperparameters the grid or the search varies.
    """
    for entry in extra:
        if not entry.startswith("--") or entry == "--":
            raise ValueError(f"--extra={entry!r} is not a tfpg.train flag; write each as --extra=--name=value.")
        name = entry[2:].split("=", 1)[0]
        for candidate in (name, name[2:] if name.startswith("no") else None):
            if candidate in _SET_PER_TRIAL:
                raise ValueError(f"--extra={entry} would contradict what the sweep sets for each trial; use "
                                 f"{_SET_PER_TRIAL[candidate]} instead.")
            if candidate in varied:
                raise ValueError(f"--extra={entry} sets {candidate}, which the sweep varies; drop it from --extra "
                                 f"or from the grid/search.")


def launcher_command(trial: Trial, algorithm: str, steps: int, logdir: str, extra: list[str]) -> list[str]:
    """The `tfpg.train` command of a trial: a new run, or `--resume` if its directory holds checkpoints."""
    command = [sys.executable, "-m", "tfpg.train", f"--algo={algorithm}", f"--env={trial.env}",
               f"--steps={steps}", f"--logdir={logdir}", "--verbose=0"]
    checkpoints = os.path.join(logdir, "checkpoints")
    if os.path.isdir(checkpoints) and os.listdir(checkpoints):
        return command + ["--resume"]
    hyperparameters = [f"--{name}={','.join(map(str, value)) if isinstance(value, tuple) else value}"
                       for name, value in trial.configuration]
    return command + [f"--seed={trial.seed}", *hyperparameters, *extra]


def parse_search(entries: list[str], algorithm: str) -> dict[str, tuple]:
    """Search entries `name=kind:arguments` as (kind, values), checked like grid values.

    Kinds: `uniform:low:high`, `loguniform:low:high`, `int:low:high` (both
    included) and `choice:v1,v2,...`.

    Raises:
        ValueError: a malformed entry, an unknown kind or hyperparameter, or an invalid value.
    """
    config_class = ALGORITHMS[algorithm].config_class
    space = {}
    for name, field, text in _entries(entries, algorithm, "search", "name=kind:arguments (kind: "
                                      + ", ".join(SEARCH_KINDS) + ")"):
        kind, _, arguments = text.partition(":")
        if kind not in SEARCH_KINDS or not arguments:
            raise ValueError(f"--search={name}={text!r}: the kind must be one of {', '.join(SEARCH_KINDS)}, "
                             f"followed by its arguments (uniform:1e-4:1e-3, int:1:8, choice:a,b).")
        if kind == "choice":
            values = [_parse_value(field, value, name) for value in arguments.split(",")]
        else:
            bounds = arguments.split(":")
            if len(bounds) != 2:
                raise ValueError(f"--search={name}={text!r}: {kind} takes low:high.")
            values = [(int if kind == "int" else float)(_parse_value(field, bound, name)) for bound in bounds]
            if not values[0] < values[1] or (kind == "loguniform" and values[0] <= 0):
                raise ValueError(f"--search={name}={text!r}: needs low < high{' and low > 0' if kind == 'loguniform' else ''}.")
        for value in values:
            config_class.from_kwargs(**{name: value})
        space[name] = (kind, values)
    return space
