"""Hyperparameters as documented dataclasses, validated with errors that name the fix.

Each field is declared with `hparam(default, help, ...)`: one line of
documentation plus the allowed range or choices. `validate` checks every field;
the launchers build their flags from the same declarations.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any


def hparam(default: Any, help: str, low: float | None = None, high: float | None = None,
           low_open: bool = False, choices: tuple | None = None) -> Any:
    """Declares a hyperparameter field with its documentation and allowed values.

    Args:
        default: the default value (tuples for sequences).
        help: one line describing the field.
        low: smallest allowed value (numbers), or None.
        high: largest allowed value (numbers), or None.
        low_open: if True, `low` itself is not allowed.
        choices: the allowed values (strings), or None.
    """
    metadata = {"help": help, "low": low, "high": high, "low_open": low_open, "choices": choices}
    return dataclasses.field(default=default, metadata=metadata)


def another_default(base: type, name: str, default: Any) -> Any:
    """Field `name` of config class `base` with another default (the same help and allowed values), for a
    subclass whose algorithm is better served by it."""
    field = {field.name: field for field in dataclasses.fields(base)}[name]
    return dataclasses.field(default=default, metadata=field.metadata)


def positive_int(name: str, value: Any) -> int:
    """`value` as an int if it is a positive integer (not a bool); otherwise a `ValueError` naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def describe_allowed(field: dataclasses.Field) -> str:
    """A human-readable statement of the values a field accepts."""
    meta = field.metadata
    if meta.get("choices"):
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    low, high = meta.get("low"), meta.get("high")
    if low is None and high is None:
        return f"a value of type {type(field.default).__name__}"
    left = "(" if meta.get("low_open") else "["
    return f"a number in {left}{'-inf' if low is None else low}, {'inf' if high is None else high}]"


def _check_value(field: dataclasses.Field, value: Any) -> Any:
    default = field.default
    allowed = describe_allowed(field)

    def bad(reason: str) -> ValueError:
        return ValueError(f"Invalid hyperparameter {field.name}={value!r}: {reason}; expected {allowed}.")

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("not a boolean")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad("not a list or tuple of positive integers")
        items = tuple(value)
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in items):
            raise bad("not a sequence of positive integers")
        return tuple(int(v) for v in items)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad("not a string")
        if field.metadata.get("choices") and value not in field.metadata["choices"]:
            raise bad("not an allowed choice")
        return value
    if isinstance(default, numbers.Number):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise bad("not a number")
        if isinstance(default, int) and not isinstance(value, numbers.Integral):
            raise bad("not an integer")
        if not math.isfinite(value):
            raise bad("not finite")
        low, high = field.metadata.get("low"), field.metadata.get("high")
        if low is not None and (value < low or (field.metadata.get("low_open") and value == low)):
            raise bad("out of range")
        if high is not None and value > high:
            raise bad("out of range")
        return type(default)(value)
    return value


# Settings a run may change when it continues from a checkpoint: they tune the size or safety of the
# steps (as the non-finite-update message advises) and leave what the checkpoint holds meaningful.
CHANGEABLE_ON_RESUME = ("learning_rate", "learning_rate_schedule", "learning_rate_decay_steps", "max_grad_norm",
                        "entropy_coef", "max_kl", "max_kl_schedule", "value_max_kl", "non_finite_env_data")


# Settings added after checkpoints were first written whose default is not what a checkpoint without them
# trained with: a record that lacks one is read as having this value.
VALUES_OF_UNRECORDED_SETTINGS = {"learning_rate_schedule": "constant", "action_mask_key": ""}


def resume_conflicts(held: dict, wanted: dict) -> dict[str, tuple]:
    """The settings two config records (`to_dict` form) disagree on that cannot change when a run continues.

    A field one record lacks (a setting a newer tfpg added) is not a conflict.

    Returns:
        name → (held value, wanted value), in field order.
    """
    return {name: (held[name], value) for name, value in wanted.items()
            if name in held and name not in CHANGEABLE_ON_RESUME and held[name] != value}


def describe_changes(changes: dict[str, tuple]) -> str:
    """`a=1 (this run: 2), ...` for name → (held, wanted) pairs."""
    return ", ".join(f"{name}={held!r} (asked: {wanted!r})" for name, (held, wanted) in changes.items())


def sequence_steps(sequence_length: int, steps: int) -> int:
    """L, the steps of each training sequence cut from `steps` steps per env copy: `sequence_length`, or all
    `steps` where `sequence_length` is 0 or not below `steps`.

    Args:
        sequence_length: the configured length (0 for whole rollouts).
        steps: the steps per env copy of the batch.
    """
    return sequence_length if 0 < sequence_length < steps else steps


@dataclasses.dataclass
class AgentConfig:
    """Hyperparameters shared by every on-policy agent."""

    rollout_steps: int = hparam(2048, "Environment steps per env copy in each iteration's batch.", low=1)
    gamma: float = hparam(0.99, "Discount factor γ.", low=0.0, high=1.0)
    gae_lambda: float = hparam(0.95, "GAE λ (1: Monte-Carlo, 0: one-step TD).", low=0.0, high=1.0)
    learning_rate: float = hparam(3e-4, "Adam learning rate.", low=0.0, low_open=True)
    max_grad_norm: float = hparam(0.5, "Global gradient-norm clip; 0 disables it.", low=0.0)
    hidden_sizes: tuple = hparam((64, 64), "Hidden layer widths of the policy and value networks (after the "
                                           "encoder, if one is given; empty: the heads act on the features).")
    activation: str = hparam("tanh", "Hidden activation.", choices=("tanh", "relu", "elu", "gelu", "silu"))
    normalize_observations: bool = hparam(True, "Normalise observations by running statistics.")
    scale_rewards: bool = hparam(False, "Divide rewards by the running std of the discounted return.")
    normalize_advantages: bool = hparam(True, "Standardise advantages within each batch.")
    initial_log_std: float = hparam(0.0, "Initial log std of Gaussian policies, in units of the action "
                                         "half-range (high - low)/2 where finite (0: std = half-range).",
                                    low=-20.0, high=2.0)
    shared_network: bool = hparam(False, "Policy and value share their hidden layers.")
    learning_rate_schedule: str = hparam(
        "constant", "The learning rate over training: constant, or linear: annealed to 0 at the step target of "
        "the fit call in progress (with the launcher, the run's --steps).", choices=("constant", "linear"))
    learning_rate_decay_steps: int = hparam(
        0, "Anneal the learning rate linearly to 0 over this many total env steps, whatever the schedule "
        "(0: as the schedule says).", low=0)
    recurrent: str = hparam("none", "A recurrent layer between the encoder and the hidden layers, its state reset at "
                                    "every episode start (none: a feed-forward network).",
                            choices=("none", "lstm", "gru"))
    recurrent_units: int = hparam(64, "Width of the recurrent layer's output and of each of its state vectors.",
                                  low=1)
    sequence_length: int = hparam(
        0, "Recurrent policies train on sequences of this many steps of one env copy, each from the state it was "
        "collected with (0: the whole rollout of each copy); must divide rollout_steps.", low=0)
    action_mask_key: str = hparam(
        "action_mask", "The Dict observation entry that masks Discrete and MultiDiscrete actions (0/1 per action: "
        "masked ones are never taken); never normalised nor a feature ('': no mask, an ordinary entry).")
    non_finite_env_data: str = hparam(
        "raise", "NaN/Inf observations or rewards from the env: stop with an error, or skip the step (it is "
        "left out of the update, its copy reset) and count it.", choices=("raise", "skip"))

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Checks every field; raises `ValueError` naming the field, the value and what is allowed."""
        for field in dataclasses.fields(self):
            setattr(self, field.name, _check_value(field, getattr(self, field.name)))
        if self.action_mask_key and not self.action_mask_key.isidentifier():
            raise ValueError(f"Invalid hyperparameter action_mask_key={self.action_mask_key!r}: the name of a Dict "
                             f"observation entry (an identifier), or '' for no action mask.")
        if self.recurrent != "none" and self.rollout_steps % self.steps_per_sequence:
            raise ValueError(
                f"sequence_length={self.sequence_length} does not divide rollout_steps={self.rollout_steps}: a "
                f"recurrent policy trains on whole sequences of each copy's rollout. Choose a sequence_length that "
                f"divides rollout_steps (or 0: the whole rollout).")

    @property
    def steps_per_sequence(self) -> int:
        """L: the steps of the sequences a recurrent policy trains on (see `sequence_steps`)."""
        return sequence_steps(self.sequence_length, self.rollout_steps)

    def to_dict(self) -> dict:
        """The fields as a JSON-able dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_kwargs(cls, **kwargs) -> "AgentConfig":
        """Builds a config, rejecting unknown names with the list of known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(
                f"Unknown hyperparameter(s) {', '.join(unknown)} for {cls.__name__}; "
                f"known: {', '.join(sorted(known))}."
            )
        return cls(**kwargs)
