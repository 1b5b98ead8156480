"""The spaces tfpg supports, described by small JSON-able dicts, and actions mapped back to them.

Supported observation spaces: `Box` (any shape; flattened), `Discrete`
(one-hot) and `MultiBinary` (described as a `Box` of int8 0/1 values, such as
an action mask), and `Dict` and `Tuple` nests of these. Supported action spaces:
`Box` (diagonal Gaussian), `Discrete` (categorical), `MultiDiscrete` and
`MultiBinary`. The descriptions let checkpoints rebuild an agent without an env.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

SUPPORTED_OBSERVATION_SPACES = ("Box", "Discrete", "MultiBinary", "Dict and Tuple of these")
SUPPORTED_ACTION_SPACES = ("Box", "Discrete", "MultiDiscrete", "MultiBinary")


def _unsupported(space: Any, role: str, supported: tuple[str, ...], why: str = "") -> ValueError:
    reason = f" ({why})" if why else ""
    return ValueError(
        f"Unsupported {role} space {space!r}{reason}. tfpg supports {role} spaces: "
        f"{', '.join(supported)}. {_WRAPPER_ADVICE[role]}"
    )


_WRAPPER_ADVICE = {
    "observation": "Wrap the environment in a gymnasium.ObservationWrapper that turns its observations into one "
                   "of these.",
    "action": "Wrap the environment in a gymnasium.ActionWrapper whose action_space is one of these and whose "
              "action() turns such actions into the env's own.",
}


def _check_box(space: spaces.Box, role: str, supported: tuple[str, ...], kind, kind_reason: str) -> None:
    if not np.issubdtype(space.dtype, kind):
        raise _unsupported(space, role, supported, kind_reason)
    if int(np.prod(space.shape)) == 0:
        raise _unsupported(space, role, supported, "empty shape")


def describe_observation_space(space: Any) -> dict:
    """Returns a JSON-able description of a supported observation space.

    Raises:
        ValueError: if the space is not supported, naming it and listing the
            supported spaces.
    """
    if isinstance(space, spaces.Box):
        _check_box(space, "observation", SUPPORTED_OBSERVATION_SPACES, np.number, "non-numeric dtype")
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": _compact_bound(space.low), "high": _compact_bound(space.high)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiBinary):  # 0/1 values, to the models as a Box of them
        return {"type": "Box", "shape": list(np.atleast_1d(space.shape).tolist()), "dtype": "int8", "low": 0.0,
                "high": 1.0}
    if isinstance(space, (spaces.Dict, spaces.Tuple)) and len(space.spaces) == 0:
        raise _unsupported(space, "observation", SUPPORTED_OBSERVATION_SPACES, "no subspaces")
    if isinstance(space, spaces.Dict):
        for key in space.spaces:
            if not isinstance(key, str) or not key.isidentifier():
                raise _unsupported(space, "observation", SUPPORTED_OBSERVATION_SPACES,
                                   f"Dict key {key!r} is not an identifier; exported policies name an input by it")
        return {"type": "Dict", "spaces": {key: describe_observation_space(sub) for key, sub in space.spaces.items()}}
    if isinstance(space, spaces.Tuple):
        return {"type": "Tuple", "spaces": [describe_observation_space(sub) for sub in space.spaces]}
    raise _unsupported(space, "observation", SUPPORTED_OBSERVATION_SPACES)


def _compact_bound(bound: np.ndarray):
    """A Box bound as one number when it is the same everywhere, else as a flat list."""
    flat = np.asarray(bound, np.float64).reshape(-1)
    return float(flat[0]) if np.all(flat == flat[0]) else flat.tolist()


def same_observation_spaces(description: dict, other: dict) -> bool:
    """Whether two observation descriptions agree, Box bounds aside.

    The bounds are recorded for user network factories, but tfpg's networks do
    not depend on them, and descriptions written by older versions lack them.
    """
    def strip(d):
        if d["type"] == "Dict":
            return {"type": "Dict", "spaces": {key: strip(sub) for key, sub in d["spaces"].items()}}
        if d["type"] == "Tuple":
            return {"type": "Tuple", "spaces": [strip(sub) for sub in d["spaces"]]}
        return {key: value for key, value in d.items() if key not in ("low", "high")}

    return strip(description) == strip(other)


def same_action_spaces(description: dict, other: dict) -> bool:
    """Whether two action descriptions agree, the width of a `Box`'s floats aside.

    The policy emits float32 and actions are converted to the env's dtype when
    sent, so a task whose torques one backend declares float64 and another
    float32 (EnvPool and Gymnasium's MuJoCo envs) is the same task to an agent.
    """
    def strip(d):
        if d["type"] == "Box" and np.issubdtype(np.dtype(d["dtype"]), np.floating):
            return {**d, "dtype": "floating"}
        return d

    return strip(description) == strip(other)


def check_same_spaces(built: tuple[dict, dict], given: tuple[dict, dict]) -> None:
    """Raises a `ValueError` if an env's (observation, action) descriptions are not the ones an agent was built for."""
    if not same_observation_spaces(given[0], built[0]) or not same_action_spaces(given[1], built[1]):
        raise ValueError(
            f"This agent was built for observation space {built[0]} and action space {built[1]}, but the env has "
            f"{given[0]} and {given[1]}. Create a new agent for this env."
        )


def space_from_description(description: dict) -> spaces.Space:
    """The Gymnasium space a description was made from (Box bounds of old descriptions: the dtype's)."""
    kind = description["type"]
    if kind == "Dict":
        return spaces.Dict({key: space_from_description(sub) for key, sub in description["spaces"].items()})
    if kind == "Tuple":
        return spaces.Tuple([space_from_description(sub) for sub in description["spaces"]])
    if kind == "Discrete":
        return spaces.Discrete(description["n"], start=description["start"])
    if kind == "MultiDiscrete":
        shape = description["shape"]
        return spaces.MultiDiscrete(np.reshape(description["nvec"], shape), start=np.reshape(description["start"], shape))
    if kind == "MultiBinary":
        return spaces.MultiBinary(description["shape"])
    dtype = np.dtype(description["dtype"])
    shape = tuple(description["shape"])
    limits = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    low = description.get("low", limits.min if limits else -np.inf)
    high = description.get("high", limits.max if limits else np.inf)
    def bound(value):
        return np.broadcast_to(np.reshape(np.asarray(value, dtype), shape if isinstance(value, list) else ()), shape)

    return spaces.Box(bound(low), bound(high), shape, dtype)


def describe_action_space(space: Any) -> dict:
    """Returns a JSON-able description of a supported action space.

    Raises:
        ValueError: if the space is not supported, naming it and listing the
            supported spaces.
    """
    if isinstance(space, spaces.Box):
        _check_box(space, "action", SUPPORTED_ACTION_SPACES, np.floating, "Box actions must be floating point")
        return {
            "type": "Box",
            "shape": list(space.shape),
            "low": np.asarray(space.low, np.float64).reshape(-1).tolist(),
            "high": np.asarray(space.high, np.float64).reshape(-1).tolist(),
            "dtype": str(space.dtype),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "shape": list(space.nvec.shape),
            "nvec": np.asarray(space.nvec).reshape(-1).tolist(),
            "start": np.asarray(space.start).reshape(-1).tolist(),
        }
    if isinstance(space, spaces.MultiBinary):
        shape = [int(space.n)] if np.isscalar(space.n) else list(space.shape)
        return {"type": "MultiBinary", "shape": shape}
    raise _unsupported(space, "action", SUPPORTED_ACTION_SPACES)


def flat_size(description: dict) -> int:
    """Number of features an observation description flattens or one-hot encodes to."""
    if description["type"] == "Discrete":
        return description["n"]
    return int(np.prod(description["shape"]))


def action_size(description: dict) -> int:
    """Length of the flat action vector the policy emits for an action description."""
    if description["type"] == "Discrete":
        return 1
    return int(np.prod(description["shape"]))


def head_classes(description: dict) -> list[int]:
    """The number of classes of each entry of a discrete action description's flat actions."""
    if description["type"] == "Discrete":
        return [int(description["n"])]
    if description["type"] == "MultiDiscrete":
        return [int(n) for n in description["nvec"]]
    if description["type"] == "MultiBinary":
        return [2] * action_size(description)
    raise ValueError(f"{description['type']} actions have no classes.")


class ActionAdapter:
    """Maps batches of flat policy actions `[B, A]` to env-ready actions.

    Gaussian samples are clipped to the bounds here (and only here); discrete
    actions get the space's `start` offset and the space's shape. The bounds
    and offsets are converted once, since this runs at every env step.

    Args:
        description: an action space description.
    """

    def __init__(self, description: dict):
        self.kind = description["type"]
        self.shape = tuple(description["shape"]) if "shape" in description else ()
        if self.kind == "Box":
            self.low = np.asarray(description["low"], np.float64)
            self.high = np.asarray(description["high"], np.float64)
            self.dtype = np.dtype(description["dtype"])
        else:
            self.start = np.asarray(description.get("start", 0), np.int64)
            self.classes = np.asarray(head_classes(description), np.int64)

    def invalid_rows(self, actions: np.ndarray) -> np.ndarray | None:
        """None if every row of flat policy actions `[B, A]` is an action of the space, else `[B]`, True where a
        row is not (NaN or infinite `Box` values, discrete values outside a head's classes): a fault of the
        policy, not of the env. The common all-valid case costs one vectorised check."""
        if self.kind == "Box":
            finite = np.isfinite(actions)
            return None if finite.all() else ~finite.all(axis=1)
        outside = (actions < 0) | (actions >= self.classes)
        return outside.any(axis=1) if outside.any() else None

    def __call__(self, actions: np.ndarray) -> np.ndarray:
        batch = actions.shape[0]
        if self.kind == "Box":
            return np.clip(actions, self.low, self.high).astype(self.dtype).reshape((batch, *self.shape))
        if self.kind == "Discrete":
            return actions.reshape(batch).astype(np.int64) + self.start
        if self.kind == "MultiDiscrete":
            return (actions.astype(np.int64) + self.start).reshape((batch, *self.shape))
        return actions.astype(np.int8).reshape((batch, *self.shape))


def to_env_actions(actions: np.ndarray, description: dict) -> np.ndarray:
    """Maps a batch of flat policy actions `[B, A]` to env-ready actions (see `ActionAdapter`)."""
    return ActionAdapter(description)(actions)
