"""absl flags for every hyperparameter of every algorithm, built from the config dataclasses.

Hyperparameter flags default to None, meaning "the algorithm's default"; only
the flags a user sets are passed on, and a flag the chosen algorithm does not
have is an error. The library itself never reads FLAGS.
"""

from __future__ import annotations

import dataclasses

from absl import flags

from tfpg.config import describe_allowed


def config_fields(config_classes) -> dict[str, dataclasses.Field]:
    """The union of the fields of several config classes, by name (first declaration wins)."""
    fields: dict[str, dataclasses.Field] = {}
    for config_class in config_classes:
        for field in dataclasses.fields(config_class):
            fields.setdefault(field.name, field)
    return fields


def define_hyperparameter_flags(config_classes, flag_values=flags.FLAGS) -> list[str]:
    """Defines one flag per hyperparameter; returns their names."""
    names = []
    for name, field in config_fields(config_classes).items():
        help_text = f"{field.metadata['help']} Allowed: {describe_allowed(field)}."
        default = field.default
        if isinstance(default, bool):
            flags.DEFINE_boolean(name, None, help_text, flag_values=flag_values)
        elif isinstance(default, int):
            flags.DEFINE_integer(name, None, help_text, flag_values=flag_values)
        elif isinstance(default, float):
            flags.DEFINE_float(name, None, help_text, flag_values=flag_values)
        elif isinstance(default, tuple):
            flags.DEFINE_list(name, None, help_text + " Comma-separated.", flag_values=flag_values)
        else:
            flags.DEFINE_string(name, None, help_text, flag_values=flag_values)
        names.append(name)
    return names


def hyperparameters_from_flags(names: list[str], config_class, flag_values=flags.FLAGS) -> dict:
    """The hyperparameters a user set, checked against `config_class`.

    Raises:
        ValueError: a set flag is not a field of `config_class`, or a list has non-integers.
    """
    own = {f.name: f for f in dataclasses.fields(config_class)}
    chosen = {}
    for name in names:
        value = flag_values[name].value
        if value is None:
            continue
        if name not in own:
            raise ValueError(
                f"--{name} is not a hyperparameter of {config_class.__name__}; "
                f"its hyperparameters are: {', '.join(sorted(own))}."
            )
        if isinstance(own[name].default, tuple):
            try:
                value = tuple(int(v) for v in value)
            except ValueError:
                raise ValueError(f"--{name}={','.join(value)} must be comma-separated integers.") from None
        chosen[name] = value
    return chosen
