"""The user's networks: factories given as functions, registered names or `module:factory` references.

An agent can take

- `encoder=fn`, `fn(observation_space) -> keras.layers.Layer`: maps the
  preprocessed observations to features; tfpg adds its torso and heads;
- `policy=fn`, `fn(observation_space, action_space) -> keras.Model` whose
  `call` returns a `tfd.Distribution`, and/or `value=fn`, the same signature,
  returning values `[batch]`.

Each may also be a string: a name given to `register_network`, or
`"module:factory"` (imported). Checkpoints record a factory by that string, or
by the importable `module:qualname` of a module-level function, so
`tfpg.load` rebuilds the same networks; a factory without such a name (a
lambda, a closure) must be passed to `tfpg.load` again. Factories, not built
layers, because π_old and a separate value network each need a new copy.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable

import keras

ROLES = ("encoder", "policy", "value")

_REGISTRY: dict[str, Callable] = {}


def register_network(name: str, factory: Callable) -> Callable:
    """Registers a network factory under `name`, so agents, the launcher and `tfpg.load` can name it.

    Args:
        name: the name (no ':'; it is not a module reference).
        factory: an encoder factory `fn(observation_space)` or a model factory
            `fn(observation_space, action_space)`.

    Returns:
        `factory`.
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"A network name must be a non-empty string without ':', got {name!r}.")
    if not callable(factory):
        raise ValueError(f"register_network({name!r}, ...) needs a callable factory, got {type(factory).__name__}.")
    _REGISTRY[name] = factory
    return factory


def resolve_reference(role: str, reference: str) -> Callable:
    """The factory a registered name or a `module:factory` string refers to.

    Raises:
        ValueError: naming the reference and why it could not be resolved.
    """
    if reference in _REGISTRY:
        return _REGISTRY[reference]
    module_name, _, attribute = reference.partition(":")
    if not attribute:
        known = ", ".join(sorted(_REGISTRY)) or "none registered"
        raise ValueError(
            f"{role}={reference!r} is neither a registered network name ({known}) nor a 'module:factory' "
            f"reference. Register it with tfpg.register_network({reference!r}, fn) or write 'module:factory'."
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"{role}={reference!r}: module {module_name!r} could not be imported ({error}).") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"{role}={reference!r}: module {module_name!r} has no attribute {attribute!r}.")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{role}={reference!r} is a {type(target).__name__}, not a callable factory.")
    return target


def reference_of(factory: Any) -> str | None:
    """A string that resolves back to `factory` (registered name or `module:qualname`), or None."""
    for name, registered in _REGISTRY.items():
        if registered is factory:
            return name
    module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    reference = f"{module}:{qualname}"
    try:
        return reference if resolve_reference("factory", reference) is factory else None
    except ValueError:
        return None


@dataclasses.dataclass
class NetworkSpec:
    """The networks an agent builds: tfpg's defaults, or the user's factories.

    Attributes:
        encoder: encoder factory, or None (tfpg's).
        policy: policy model factory, or None (tfpg's).
        value: value model factory, or None (tfpg's).
        references: the recorded string of each given factory (None where it has none).
    """

    encoder: Any = None
    policy: Any = None
    value: Any = None
    references: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_arguments(cls, encoder=None, policy=None, value=None) -> "NetworkSpec":
        """Validates the agent's `encoder`, `policy` and `value` arguments.

        Raises:
            ValueError: a bad kind of argument, an unresolvable name, or an
                encoder given together with a full model.
        """
        given = {"encoder": encoder, "policy": policy, "value": value}
        if encoder is not None and (policy is not None or value is not None):
            raise ValueError(
                "encoder= feeds tfpg's own policy and value heads, while policy= and value= replace those "
                "models whole; give either an encoder or full models, not both."
            )
        resolved, references = {}, {}
        for role, argument in given.items():
            if argument is None:
                resolved[role] = None
                continue
            if isinstance(argument, str):
                resolved[role], references[role] = resolve_reference(role, argument), argument
            elif callable(argument) and not isinstance(argument, keras.layers.Layer):
                resolved[role], references[role] = argument, reference_of(argument)
            else:
                expected = ("a function observation_space -> keras layer" if role == "encoder"
                            else "a function (observation_space, action_space) -> keras.Model")
                raise ValueError(
                    f"{role}= must be {expected}, a registered network name or 'module:factory'; got "
                    f"{type(argument).__name__}. A built layer or model cannot also make π_old or a separate "
                    f"value network: pass the function that builds a new one at each call."
                )
        return cls(**resolved, references=references)

    @property
    def is_default(self) -> bool:
        """Whether every network is tfpg's own."""
        return self.encoder is None and self.policy is None and self.value is None

    def record(self) -> dict:
        """The JSON-able record kept in checkpoints and exports: role -> reference (None: unnamed)."""
        return {role: self.references.get(role) for role in ROLES if getattr(self, role) is not None}
